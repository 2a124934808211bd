package callback

import (
	"bytes"
	"testing"
)

// FuzzDecode: any input is refused or decoded, never a panic; a decoded
// document has the keys the schema requires.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"master_host": "m.example.org", "master_host_keys": ["ssh-ed25519 AAAA"], "callback_user": "cb", "remote_port": 22000, "key": "generate"}`))
	f.Add([]byte(`{"master_host": "10.0.0.1", "master_host_keys": ["x"], "callback_user": "cb", "remote_port": 22000, "key": {"private": "p", "public": "q"}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		if d.MasterHost == "" || len(d.MasterHostKeys) == 0 || d.CallbackUser == "" || d.RemotePort < 1024 || len(d.Key) == 0 {
			t.Fatalf("decoded an incomplete document: %+v", d)
		}
	})
}
