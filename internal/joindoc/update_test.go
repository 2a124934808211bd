package joindoc

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/nodejoin/nodejoin/internal/problem"
)

// ganetiSSHUpdate is shaped as Ganeti 3.0's backend sends it to another
// node when one is added (AddNodeSshKeyBulk), keys shortened.
const ganetiSSHUpdate = `{"cluster_name": "c1.example.org", "node_daemon_certificate": "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n",
 "authorized_keys": ["add", {"b-uuid": ["ssh-rsa AAAA b"], "a-uuid": ["ssh-rsa AAAA a"]}],
 "public_keys": ["replace_or_add", {"b-uuid": ["ssh-rsa AAAA b"], "a-uuid": ["ssh-rsa AAAA a"]}],
 "generate": ["rsa", 2048, "_master_tmp"]}`

// TestSSHUpdateKeepsOrder: the key maps keep the document's order, which
// Ganeti's tool writes the public key file in, and marshal back to it.
func TestSSHUpdateKeepsOrder(t *testing.T) {
	d, err := DecodeSSHUpdate(strings.NewReader(ganetiSSHUpdate))
	if err != nil {
		t.Fatal(err)
	}
	if d.PublicKeys.Action != ActionReplaceOrAdd || len(d.PublicKeys.Keys) != 2 ||
		d.PublicKeys.Keys[0].Node != "b-uuid" || d.PublicKeys.Keys[1].Node != "a-uuid" {
		t.Errorf("public_keys = %+v", d.PublicKeys)
	}
	if *d.Generate != (GenerateKeys{"rsa", 2048, "_master_tmp"}) {
		t.Errorf("generate = %+v", d.Generate)
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"public_keys":["replace_or_add",{"b-uuid":["ssh-rsa AAAA b"],"a-uuid":["ssh-rsa AAAA a"]}]`) {
		t.Errorf("marshalled: %s", b)
	}
	again, err := DecodeSSHUpdate(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decoding the marshalled document: %v", err)
	}
	if again.PublicKeys.Keys[0].Node != "b-uuid" {
		t.Errorf("order lost in a round trip: %+v", again.PublicKeys)
	}
}

func FuzzDecodeSSHUpdate(f *testing.F) {
	f.Add([]byte(ganetiSSHUpdate))
	f.Add([]byte(`{"cluster_name": "c", "public_keys": ["clear", {}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := DecodeSSHUpdate(bytes.NewReader(data))
		var rej *problem.RejectedError
		if err != nil && !errors.As(err, &rej) {
			t.Fatalf("not a rejection: %v", err)
		}
		if err != nil {
			return
		}
		if d.ClusterName == "" {
			t.Fatal("accepted without a cluster name")
		}
		for _, a := range []*KeyAction{d.AuthorizedKeys, d.PublicKeys} {
			if a != nil && a.Action == "" {
				t.Fatal("accepted an action without its name")
			}
		}
	})
}

func FuzzDecodeSSLUpdate(f *testing.F) {
	f.Add([]byte(`{"cluster_name": "c", "node_daemon_certificate": "x", "node_name": "n", "action": "create"}`))
	f.Add([]byte(`{"cluster_name": "c", "node_daemon_certificate": "x", "action": "delete"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := DecodeSSLUpdate(bytes.NewReader(data))
		var rej *problem.RejectedError
		if err != nil && !errors.As(err, &rej) {
			t.Fatalf("not a rejection: %v", err)
		}
		if err == nil && (d.ClusterName == "" || d.Action == CryptoCreate && d.NodeName == "") {
			t.Fatal("accepted without a required key")
		}
	})
}
