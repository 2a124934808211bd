package joinapi

// PathFile is where join-service serves the node programs a fresh machine
// installs at first boot (render-cloud-config's install from join-service):
// GET, no secret, since they are the same public programs the nodejoin-node
// package holds; a machine checks each against the SHA-256 its user-data
// pins.
const PathFile = "/v1/files/{name}"

// NodePrograms are the programs join-service serves, and what a node needs
// to join: node-join applies both documents itself, noded is the node
// daemon, and the other two are the node-side programs node-add runs.
var NodePrograms = []string{"node-join", "prepare-node-join", "node-daemon-setup", "noded"}

// OptionalNodePrograms are served too when the administrator put them
// there, for the machines that need them: callback-setup, for a node behind
// NAT (render-cloud-config's callback).
var OptionalNodePrograms = []string{"callback-setup"}

// FilePath is PathFile for one program.
func FilePath(name string) string { return "/v1/files/" + name }

// CodeNotFound answers a file join-service does not serve (404).
const CodeNotFound = "not_found"
