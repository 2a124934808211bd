package joindoc

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/nodejoin/nodejoin/internal/jsondoc"
	"github.com/nodejoin/nodejoin/schemas"
)

// Prepare is prepare-node-join's input (Ganeti's SSHS_* keys).
type Prepare struct {
	ClusterName           string              `json:"cluster_name"`
	NodeDaemonCertificate string              `json:"node_daemon_certificate,omitempty"`
	SSHHostKey            []KeyTriple         `json:"ssh_host_key,omitempty"`
	SSHRootKey            []KeyTriple         `json:"ssh_root_key,omitempty"`
	AuthorizedKeys        map[string][]string `json:"authorized_keys,omitempty"`
	SSHKeyType            string              `json:"ssh_key_type,omitempty"`
	SSHKeyBits            int                 `json:"ssh_key_bits,omitempty"`
	// CertificateRenewal is nodejoin's own key (nil: absent, as from a
	// Ganeti master).
	CertificateRenewal *CertificateRenewal `json:"cluster_certificate_renewal,omitempty"`
}

// CertificateRenewal comes with a new cluster certificate during its
// rotation (cluster-renew): the certificate it replaces and the proof,
// made with the replaced key, that lets a node holding that key take the
// new one (nodestate.CheckCertificate).
type CertificateRenewal struct {
	PreviousCertificate string    `json:"previous_certificate"`
	Proof               string    `json:"proof"`
	WindowEnd           time.Time `json:"window_end"`
}

// KeyTriple is one key pair as Ganeti sends it: the JSON array
// [kind, private key PEM, public key line].
type KeyTriple struct {
	Kind    string
	Private string
	Public  string
}

// MarshalJSON writes the triple as Ganeti's three-element array.
func (k KeyTriple) MarshalJSON() ([]byte, error) {
	return json.Marshal([3]string{k.Kind, k.Private, k.Public})
}

// UnmarshalJSON reads the three-element array (the schema has checked it).
func (k *KeyTriple) UnmarshalJSON(b []byte) error {
	var a []string
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	if len(a) != 3 {
		return fmt.Errorf("a key is a list of 3 strings, not %d", len(a))
	}
	k.Kind, k.Private, k.Public = a[0], a[1], a[2]
	return nil
}

// DecodePrepare reads and checks a prepare-node-join document.
func DecodePrepare(r io.Reader) (*Prepare, error) {
	var d Prepare
	if err := jsondoc.Decode(r, schemas.Get(schemas.PrepareNodeJoin), &d); err != nil {
		return nil, err
	}
	return &d, nil
}
