package callback

import (
	"bytes"
	"testing"

	"github.com/nodejoin/nodejoin/internal/jsondoc"
	"github.com/nodejoin/nodejoin/schemas"
)

// FuzzDecodeRequest: any input is refused or decoded, never a panic; a
// decoded request names a node and a key.
func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"node": "node1.example.org", "public_key": "ssh-ed25519 AAAA c1", "port": "any"}`))
	f.Add([]byte(`{"node": "node1", "public_key": "k", "port": 22000}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var req Request
		if err := jsondoc.Decode(bytes.NewReader(data), schemas.Get(schemas.CallbackGrant), &req); err != nil {
			return
		}
		if req.Node == "" || req.PublicKey == "" {
			t.Fatalf("decoded an incomplete request: %+v", req)
		}
		_, _ = CheckKey(req.PublicKey)
	})
}

// TestIncludesDropIns: the Include forms sshd resolves to the
// drop-in directory, and none after a Match (it would be inside it).
func TestIncludesDropIns(t *testing.T) {
	for _, tc := range []struct {
		conf string
		want bool
	}{
		{"Include /etc/ssh/sshd_config.d/*.conf\n", true},
		{"include sshd_config.d/*.conf\n", true},
		{"# Include /etc/ssh/sshd_config.d/*.conf\n", false},
		{"Match User x\nInclude /etc/ssh/sshd_config.d/*.conf\n", false},
		{"Include /etc/ssh/other/*.conf\n", false},
	} {
		if got := includesDropIns([]byte(tc.conf), "/etc/ssh"); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.conf, got, tc.want)
		}
	}
}
