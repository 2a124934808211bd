package joinapi

import (
	"encoding/json"
	"time"
)

// DefaultPort is join-service's HTTPS port when a token names none; Ganeti's
// daemons use 1811 (noded), 1814 (confd), 1815 (mond).
const DefaultPort = 1816

// The API, all over HTTPS with the cluster certificate. The secret goes in
// the Authorization header as "Bearer <secret>", never in the URL, which
// proxies and access logs keep.
const (
	// GET: the slot's documents; consumes one use of the secret.
	PathSlot = "/v1/slots/{uuid}"
	// POST StatusRequest: the node's status report.
	PathStatus = "/v1/slots/{uuid}/status"
	// GET ?after=REV&wait=DURATION: the config once its revision is newer
	// than REV, or 304 Not Modified when wait (at most MaxWait) ends.
	PathConfig = "/v1/slots/{uuid}/config"
	// POST AssignRequest with the pool's secret: the first free dynamic slot.
	PathAssign = "/v1/dynamic"
)

// DynamicUUID stands in a token for the uuid of a dynamic pool's slot: the
// node presents the pool's secret to PathAssign and learns its uuid there.
const DynamicUUID = "dynamic"

// Bounds of the protocol.
const (
	MaxRequestBody = 64 << 10         // a status report or an assignment request
	MaxAnswerBody  = 4 << 20          // documents (tens of KiB) plus a config of up to 1 MiB, base64
	MaxWait        = 50 * time.Second // a config long poll; below the server's write timeout
	DefaultWait    = 30 * time.Second
)

// Statuses a node reports. Only StatusJoined makes the master record the
// node; the others are kept for the operator (slot show).
const (
	StatusApplying = "applying" // documents fetched, being applied
	StatusJoined   = "joined"   // both documents applied, the node daemon runs
	StatusFailed   = "failed"   // applying failed; the node was put back (params "error" says why)
)

// Statuses lists the statuses a report may carry.
var Statuses = []string{StatusApplying, StatusJoined, StatusFailed}

// Documents is the answer to a fetch (GET PathSlot) and to an assignment:
// the two documents node-add sends, built from the master's state at the
// time of the fetch, and the slot's opaque config.
type Documents struct {
	UUID     string `json:"uuid"`
	NodeName string `json:"node_name"`
	// PrimaryIP is the address the master records for the node: the
	// slot's "primary_ip" parameter, else the address the fetch came from.
	PrimaryIP string `json:"primary_ip"`
	// Prepare and DaemonSetup are prepare-node-join's and
	// node-daemon-setup's documents, as those programs read them on stdin.
	Prepare     json.RawMessage `json:"prepare_node_join"`
	DaemonSetup json.RawMessage `json:"node_daemon_setup"`
	// Config is the slot's opaque config (base64 in JSON), byte for byte.
	Config         []byte            `json:"config"`
	ConfigRevision int64             `json:"config_revision"`
	Params         map[string]string `json:"params,omitempty"`
	Expires        time.Time         `json:"expires"`
}

// AssignRequest is the body of an assignment. NodeName is the machine's
// own name, which a dynamic slot does not have.
type AssignRequest struct {
	NodeName string `json:"node_name"`
}

// StatusRequest is a node's status report (the seed's update_cache).
type StatusRequest struct {
	Status string            `json:"status"`
	Params map[string]string `json:"params,omitempty"`
	// ClaimedAddr is the address the node believes it has: a hint only;
	// the server records the address it sees the report come from.
	ClaimedAddr string `json:"claimed_addr,omitempty"`
	// RootKey is the node's root public key (authorized_keys line), pinned
	// by the first report; a later report with another key is refused.
	RootKey string `json:"root_key"`
	// NodeName is required for a slot that has no name (a dynamic one)
	// and must then be the name the node fetched its documents with.
	NodeName string `json:"node_name,omitempty"`
	// CheckReach asks the master to try the node's SSH port at the
	// address it records for it (StatusAnswer.Reachable).
	CheckReach bool `json:"check_reach,omitempty"`
}

// StatusAnswer is the answer to a status report.
type StatusAnswer struct {
	UUID   string `json:"uuid"`
	Status string `json:"status"`
	Peer   string `json:"peer"` // the address the server saw
	// Recorded: the master has recorded the node (after "joined").
	Recorded bool `json:"recorded"`
	// Reachable answers CheckReach: whether the master opened a TCP
	// connection to the node's SSH port within a few seconds; absent
	// when not asked.
	Reachable *bool `json:"reachable,omitempty"`
}

// ConfigAnswer is the answer to a config poll.
type ConfigAnswer struct {
	Config   []byte `json:"config"`
	Revision int64  `json:"config_revision"`
}

// Error is the body of every answer that is not 200. Message never names a
// secret, and for CodeUnauthorized says nothing about the slot.
type Error struct {
	Code    string `json:"error"`
	Message string `json:"message"`
}

// Error codes with their HTTP statuses.
const (
	CodeUnauthorized = "unauthorized" // 401: unknown slot, wrong secret, or a dynamic slot not assigned yet
	CodeExpired      = "expired"      // 410: the secret has expired
	CodeSpent        = "spent"        // 410: the secret has no use left
	CodeNotFetched   = "not_fetched"  // 409: a report or poll before any fetch
	CodeKeyMismatch  = "key_mismatch" // 409: another root key than the pinned one
	CodeNameTaken    = "name_taken"   // 409: a nameless slot asked for a recorded node's name
	CodeNoFreeSlot   = "no_free_slot" // 503: the pool has no free slot now
	CodeInvalid      = "invalid"      // 400: the request is malformed
	CodeTooLarge     = "too_large"    // 413: the body is over the bound
	CodeUnavailable  = "unavailable"  // 503: the store does not answer; try again
	CodeInternal     = "internal"     // 500
)
