package joindoc

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/nodejoin/nodejoin/internal/problem"
)

// A document as a Ganeti 3.1 master sends it (gnt_node._SetupSSH): an
// empty ssh_root_key, rsa type and bits. Key text is not parsed here.
const ganetiPrepare = `{
 "cluster_name": "cluster.example.com",
 "node_daemon_certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
 "ssh_host_key": [["rsa", "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n", "ssh-rsa AAAA root@master"]],
 "ssh_root_key": [],
 "authorized_keys": {"0c1a-uuid": ["ssh-rsa AAAA root@master"]},
 "ssh_key_type": "rsa",
 "ssh_key_bits": 2048
}`

func TestDecodePrepareGanetiDocument(t *testing.T) {
	d, err := DecodePrepare(strings.NewReader(ganetiPrepare))
	if err != nil {
		t.Fatal(err)
	}
	if d.ClusterName != "cluster.example.com" || len(d.SSHHostKey) != 1 || d.SSHHostKey[0].Kind != "rsa" ||
		d.SSHHostKey[0].Public != "ssh-rsa AAAA root@master" || d.SSHKeyBits != 2048 || d.SSHRootKey == nil {
		t.Errorf("decoded %+v", d)
	}
	// Encoding gives Ganeti's shape back: triples as arrays.
	out, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`"ssh_host_key":[["rsa",`)) {
		t.Errorf("encoded %s", out)
	}
}

func TestDecodeDaemonSetupGanetiKeys(t *testing.T) {
	var ss []string
	for _, h := range []string{"kvm", "xen-pvm", "xen-hvm", "chroot", "lxc", "fake"} {
		ss = append(ss, `"hvparams_`+h+`": "a=b"`)
	}
	doc := `{"cluster_name": "c", "node_daemon_certificate": "x", "hmac_key": "k\n",
	  "ssconf": {"cluster_name": "c", "instance_list": "", ` + strings.Join(ss, ", ") + `},
	  "start_node_daemon": true, "node_name": "node1.c"}`
	d, err := DecodeDaemonSetup(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Ssconf) != 8 || !d.StartNodeDaemon || d.HMACKey != "k\n" {
		t.Errorf("decoded %+v", d)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty prepare", `{}`, "invalid input: /cluster_name: required key is missing"},
		{"bits without type", `{"cluster_name": "c", "ssh_key_bits": 256}`,
			"invalid input: /ssh_key_type: required key is missing, since ssh_key_bits is given"},
		{"long triple", `{"cluster_name": "c", "ssh_root_key": [["rsa", "a", "b", "c"]]}`,
			"invalid input: /ssh_root_key/0: maximum 3 items required, but found 4 items"},
		{"empty private", `{"cluster_name": "c", "ssh_root_key": [["rsa", "", "b"]]}`,
			"invalid input: /ssh_root_key/0/1: length must be >= 1, but got 0"},
		{"empty key line", `{"cluster_name": "c", "authorized_keys": {"u": [""]}}`,
			"invalid input: /authorized_keys/u/0: length must be >= 1, but got 0"},
		{"zero bits", `{"cluster_name": "c", "ssh_key_type": "rsa", "ssh_key_bits": 0}`,
			"invalid input: /ssh_key_bits: must be >= 1 but found 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodePrepare(strings.NewReader(tc.in))
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v\nwant %s", err, tc.want)
			}
		})
	}
}

// Cluster and node names are host names in every document that has them:
// they go into ssconf files, certificate subjects and known_hosts lines.
func TestDecodeNames(t *testing.T) {
	setup := func(cluster, node string) string {
		return `{"cluster_name": "` + cluster + `", "node_daemon_certificate": "x", "hmac_key": "k",
		  "ssconf": {"cluster_name": "c1.example.org"}, "node_name": "` + node + `"}`
	}
	decoders := map[string]func(string) error{
		"prepare": func(in string) error { _, err := DecodePrepare(strings.NewReader(in)); return err },
		"setup":   func(in string) error { _, err := DecodeDaemonSetup(strings.NewReader(in)); return err },
		"ssconf":  func(in string) error { _, err := DecodeSsconfUpdate(strings.NewReader(in)); return err },
	}
	for _, tc := range []struct{ name, decoder, in, want string }{
		{"prepare ok", "prepare", `{"cluster_name": "c1.example.org"}`, ""},
		{"prepare NUL", "prepare", `{"cluster_name": "c1\u0000.example.org"}`,
			"invalid input: /cluster_name: not a host name: byte 2 (0x00) is not a letter, digit, '-' or '.'"},
		{"prepare newline", "prepare", `{"cluster_name": "c1.example.org\nmaster_node"}`,
			"invalid input: /cluster_name: not a host name: byte 14 (0x0a) is not a letter, digit, '-' or '.'"},
		{"prepare empty", "prepare", `{"cluster_name": ""}`, "invalid input: /cluster_name: not a host name: empty"},
		{"prepare trailing dot", "prepare", `{"cluster_name": "c1.example.org."}`,
			"invalid input: /cluster_name: not a host name: must not end with '.'"},
		{"setup ok", "setup", setup("c1.example.org", "node1.c1.example.org"), ""},
		{"setup CN", "setup", setup("c1.example.org", "node1/CN=master.c1.example.org"),
			"invalid input: /node_name: not a host name: byte 5 ('/') is not a letter, digit, '-' or '.'"},
		{"setup slash", "setup", setup("c1/example.org", "node1"),
			"invalid input: /cluster_name: not a host name: byte 2 ('/') is not a letter, digit, '-' or '.'"},
		{"setup long", "setup", setup("c1.example.org", strings.Repeat("a.", 127)),
			"invalid input: /node_name: not a host name: longer than 253 bytes"},
		{"setup hyphen", "setup", setup("c1.example.org", "node1-"),
			"invalid input: /node_name: not a host name: label 1 ends with '-'"},
		{"ssconf", "ssconf", `{"cluster_name": "c1..org", "ssconf": {"cluster_name": "c1..org"}}`,
			"invalid input: /cluster_name: not a host name: label 2 is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if err := decoders[tc.decoder](tc.in); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func FuzzDecodePrepare(f *testing.F) {
	f.Add([]byte(ganetiPrepare))
	f.Add([]byte(`{"cluster_name": "c", "ssh_key_type": "ed25519"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := DecodePrepare(bytes.NewReader(data))
		var rej *problem.RejectedError
		if err != nil && !errors.As(err, &rej) {
			t.Fatalf("not a rejection: %v", err)
		}
		if err == nil && d.ClusterName == "" {
			t.Fatal("accepted without a cluster name")
		}
	})
}

func FuzzDecodeDaemonSetup(f *testing.F) {
	f.Add([]byte(`{"cluster_name": "c", "node_daemon_certificate": "x", "hmac_key": "k", "ssconf": {"cluster_name": "c"}, "node_name": "n"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := DecodeDaemonSetup(bytes.NewReader(data))
		var rej *problem.RejectedError
		if err != nil && !errors.As(err, &rej) {
			t.Fatalf("not a rejection: %v", err)
		}
		if err == nil && (d.ClusterName == "" || d.NodeName == "" || d.Ssconf == nil) {
			t.Fatal("accepted without a required key")
		}
	})
}

func FuzzDecodeResult(f *testing.F) {
	f.Add([]byte(`{"program": "p", "changed": true, "dry_run": false, "files": [], "restarted": []}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = DecodeResult(bytes.NewReader(data))
	})
}
