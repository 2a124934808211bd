package joindoc

import (
	"io"

	"github.com/nodejoin/nodejoin/internal/jsondoc"
	"github.com/nodejoin/nodejoin/schemas"
)

// DaemonSetup is node-daemon-setup's input (Ganeti's NDS_* keys).
type DaemonSetup struct {
	ClusterName           string            `json:"cluster_name"`
	NodeDaemonCertificate string            `json:"node_daemon_certificate"`
	HMACKey               string            `json:"hmac_key"`
	Ssconf                map[string]string `json:"ssconf"`
	StartNodeDaemon       bool              `json:"start_node_daemon"`
	NodeName              string            `json:"node_name"`
	// NodeDaemonPort is nodejoin's own key (0: absent, as from a Ganeti
	// master): the port the master reaches the node daemon on.
	NodeDaemonPort int `json:"node_daemon_port,omitempty"`
	// CertificateRenewal: as in Prepare.
	CertificateRenewal *CertificateRenewal `json:"cluster_certificate_renewal,omitempty"`
}

// DecodeDaemonSetup reads and checks a node-daemon-setup document.
func DecodeDaemonSetup(r io.Reader) (*DaemonSetup, error) {
	var d DaemonSetup
	if err := jsondoc.Decode(r, schemas.Get(schemas.NodeDaemonSetup), &d); err != nil {
		return nil, err
	}
	return &d, nil
}
