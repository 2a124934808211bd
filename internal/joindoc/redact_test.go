package joindoc

import (
	"encoding/json"
	"strings"
	"testing"
)

// Every secret of a document is gone from its redacted view, ssh_root_key
// included, with no digest beside its size; the document itself is kept.
func TestRedacted(t *testing.T) {
	const priv = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecretbody\n-----END OPENSSH PRIVATE KEY-----\n"
	p := Prepare{ClusterName: "c1.example.org",
		SSHHostKey: []KeyTriple{{Kind: "ed25519", Private: priv, Public: "ssh-ed25519 AAAAhost"}},
		SSHRootKey: []KeyTriple{{Kind: "rsa", Private: priv, Public: "ssh-rsa AAAAroot"}}}
	d := DaemonSetup{ClusterName: "c1.example.org", NodeName: "node1.example.org", HMACKey: "0123abcd\n",
		NodeDaemonCertificate: "-----BEGIN PRIVATE KEY-----\nsecretbody\n-----END PRIVATE KEY-----\n"}
	for _, tc := range []struct {
		name string
		v    any
		want []string
	}{
		{"prepare", p.Redacted(), []string{`["ed25519","(secret, 81 bytes)","ssh-ed25519 AAAAhost"]`, `["rsa","(secret, 81 bytes)","ssh-rsa AAAAroot"]`}},
		{"daemon setup", d.Redacted(), []string{`"hmac_key":"(secret, 9 bytes)"`, `"node_daemon_certificate":"(secret, 65 bytes)"`, `"node_name":"node1.example.org"`}},
	} {
		b, err := json.Marshal(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"secretbody", "PRIVATE", "0123abcd", "sha256"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s: redacted view holds %q: %s", tc.name, bad, b)
			}
		}
		for _, w := range tc.want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s: redacted view lacks %s: %s", tc.name, w, b)
			}
		}
	}
	if p.SSHRootKey[0].Private != priv || d.HMACKey != "0123abcd\n" {
		t.Error("Redacted changed the document itself")
	}
}
