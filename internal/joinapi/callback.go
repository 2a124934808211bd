package joinapi

// The machine callback in pull mode (join-service(8), "The machine callback"): a node
// the master cannot reach asks for a reverse-tunnel grant with its slot's
// secret, then keeps the tunnel that callback-setup(8) keeps.
const (
	// POST CallbackRequest: the grant of the slot's node; the first key
	// wins, the same key again answers the same grant, another key is
	// refused with CodeCallbackKey.
	PathCallback = "/v1/slots/{uuid}/callback"
	// MaxCallbackBody bounds a callback request: one public key line.
	MaxCallbackBody = 8 << 10
)

// CallbackRequest carries the node's callback public key (an
// authorized_keys line, no options), made on the node.
type CallbackRequest struct {
	PublicKey string `json:"public_key"`
	// NodeName is required for a slot that has no name and must be the
	// name the node reports with.
	NodeName string `json:"node_name,omitempty"`
}

// CallbackAnswer is the grant: what callback-setup's document needs
// besides the master's host, which is the one the node dialled.
type CallbackAnswer struct {
	UUID     string `json:"uuid"`
	NodeName string `json:"node_name"`
	// RemotePort is the master port the node forwards its sshd to.
	RemotePort   int    `json:"remote_port"`
	CallbackUser string `json:"callback_user"`
	// MasterPort is the master's sshd port; MasterHostKeys its host
	// keys ("type base64"), pinned by the node's known_hosts.
	MasterPort     int      `json:"master_port"`
	MasterHostKeys []string `json:"master_host_keys"`
}

// Callback refusals.
const (
	CodeCallbackKey = "callback_key_taken" // 409: the node has a grant with another key, or the slot one for another node
	CodeCallbackOff = "callback_disabled"  // 403: this join-service grants no callbacks, or the master's account is not set up
)
