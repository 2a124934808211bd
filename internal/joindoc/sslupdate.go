package joindoc

import (
	"io"

	"github.com/nodejoin/nodejoin/internal/jsondoc"
	"github.com/nodejoin/nodejoin/schemas"
)

// Actions of ssl-update (Ganeti's CRYPTO_ACTION_CREATE and _DELETE).
const (
	CryptoCreate = "create"
	CryptoDelete = "delete"
)

// SSLUpdate is ssl-update's input (Ganeti 3.0's lib/tools/ssl_update.py):
// make a new client certificate for the node, or delete it.
type SSLUpdate struct {
	ClusterName string `json:"cluster_name"`
	// NodeDaemonCertificate is the master's server.pem, key and
	// certificate: its key must be this node's.
	NodeDaemonCertificate string `json:"node_daemon_certificate"`
	NodeName              string `json:"node_name,omitempty"`
	Action                string `json:"action"`
}

// DecodeSSLUpdate reads and checks an ssl-update document.
func DecodeSSLUpdate(r io.Reader) (*SSLUpdate, error) {
	var d SSLUpdate
	if err := jsondoc.Decode(r, schemas.Get(schemas.SSLUpdate), &d); err != nil {
		return nil, err
	}
	return &d, nil
}
