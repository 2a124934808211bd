// Package noded is what both sides of the reference node daemon share: the
// answers of its small HTTPS API and the client the master uses to wait for
// a node's daemon and to push ssconf to it. The server and the process
// handling live on the node side (internal/node/nodedserver).
package noded

// Version is the answer to GET /version.
type Version struct {
	Program     string `json:"program"`
	Version     string `json:"version"`
	Protocol    int    `json:"protocol"`
	ClusterName string `json:"cluster_name"`
	NodeName    string `json:"node_name"`
}

// Health is the answer to GET /health.
type Health struct {
	Status        string            `json:"status"` // "ok" or "degraded"
	UptimeSeconds int64             `json:"uptime_seconds"`
	Checks        map[string]string `json:"checks"`
}

// Protocol is the version of this small API.
const Protocol = 1

// ErrorReply is the body of a refused or failed request.
type ErrorReply struct {
	Errors []string `json:"errors"`
}
