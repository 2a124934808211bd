package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
)

func run(t *testing.T, root string, doc []byte) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cli.Env{Stdin: bytes.NewReader(doc), Stdout: &out, Stderr: &errb}
	code = cli.Run(prog, env, []string{"--root", root}, program.Run)
	return code, out.String(), errb.String()
}

func write(t *testing.T, root, p, data string, mode os.FileMode) {
	t.Helper()
	p = filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

// joined is a node root that node-daemon-setup has set up for c.
func joined(t *testing.T, c *fixture.Cluster) string {
	root := fixture.NewRoot(t)
	write(t, root, "var/lib/ganeti/ssconf_cluster_name", c.Name+"\n", 0o444)
	write(t, root, "var/lib/ganeti/ssconf_master_candidates_certs", "uuid=AB:CD\n", 0o444)
	write(t, root, "var/lib/ganeti/server.pem", string(c.ServerPEM), 0o440)
	write(t, root, "var/lib/ganeti/client.pem", "old client\n", 0o440)
	return root
}

// sslDoc is the document Ganeti's _RenewClientCerts sends.
func sslDoc(c *fixture.Cluster, server []byte, node, action string) []byte {
	d := map[string]string{"cluster_name": c.Name, "node_daemon_certificate": string(server), "action": action}
	if node != "" {
		d["node_name"] = node
	}
	return fixture.JSON(d)
}

// TestCreate makes a client certificate for the node name signed by the
// cluster certificate, keeps the old one as a backup, and reports its
// fingerprint; a second run makes another (Ganeti renews on every call).
func TestCreate(t *testing.T) {
	c, err := fixture.NewCluster("c1.example.org")
	if err != nil {
		t.Fatal(err)
	}
	root := joined(t, c)
	server, err := certs.ParseKeyPair(c.ServerPEM)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := nodeconf.Load(root) // the client key node.json asks for
	if err != nil {
		t.Fatal(err)
	}
	var fps []string
	for i := range 2 {
		code, stdout, stderr := run(t, root, sslDoc(c, c.ServerPEM, "node1.c1.example.org", "create"))
		if code != 0 {
			t.Fatalf("run %d: exit %d\n%s", i, code, stderr)
		}
		var res joindoc.Result
		if err := json.Unmarshal([]byte(stdout), &res); err != nil {
			t.Fatal(err)
		}
		pem, err := os.ReadFile(filepath.Join(root, "var/lib/ganeti/client.pem"))
		if err != nil {
			t.Fatal(err)
		}
		if err := certs.CheckClientCertificate(pem, server, "node1.c1.example.org", cfg.ClientKey(), time.Now()); err != nil {
			t.Errorf("run %d: client.pem: %v", i, err)
		}
		kp, _ := certs.ParseKeyPair(pem)
		if fp := certs.Fingerprint(kp.Cert); fp != res.ClientCertificateFingerprint {
			t.Errorf("run %d: reported %s, on disk %s", i, res.ClientCertificateFingerprint, fp)
		}
		fps = append(fps, res.ClientCertificateFingerprint)
		if strings.Contains(stdout+stderr, "PRIVATE KEY") {
			t.Error("a private key was printed")
		}
	}
	if fps[0] == fps[1] {
		t.Error("the second create kept the first certificate")
	}
	backups, _ := filepath.Glob(filepath.Join(root, "var/lib/ganeti/client.pem.backup-*"))
	if len(backups) != 2 {
		t.Errorf("%d backups of client.pem, want 2", len(backups))
	}
	fi, _ := os.Stat(filepath.Join(root, "var/lib/ganeti/client.pem"))
	if fi.Mode().Perm() != 0o440 {
		t.Errorf("client.pem is %v, want 0440", fi.Mode())
	}
}

// TestDelete removes client.pem and the candidates' digests; a second run
// finds nothing to do.
func TestDelete(t *testing.T) {
	c, err := fixture.NewCluster("c1.example.org")
	if err != nil {
		t.Fatal(err)
	}
	root := joined(t, c)
	for i, want := range []string{`"changed": true`, `"changed": false`} {
		code, stdout, stderr := run(t, root, sslDoc(c, c.ServerPEM, "", "delete"))
		if code != 0 || !strings.Contains(stdout, want) {
			t.Fatalf("run %d: exit %d, want %s\n%s%s", i, code, want, stdout, stderr)
		}
	}
	for _, p := range []string{"client.pem", "ssconf_master_candidates_certs"} {
		if _, err := os.Stat(filepath.Join(root, "var/lib/ganeti", p)); !os.IsNotExist(err) {
			t.Errorf("%s is still there: %v", p, err)
		}
	}
}

// TestRefusals: a document that fails a check exits 3 and changes nothing.
func TestRefusals(t *testing.T) {
	c, err := fixture.NewCluster("c1.example.org")
	if err != nil {
		t.Fatal(err)
	}
	other, err := fixture.NewCluster("c2.example.org")
	if err != nil {
		t.Fatal(err)
	}
	otherName := fixture.JSON(map[string]string{"cluster_name": c.Name, "node_daemon_certificate": string(other.ServerPEM),
		"node_name": "node1.c1.example.org", "action": "create"})
	tests := []struct {
		name   string
		doc    []byte
		fresh  bool
		want   string
		prefix bool
	}{
		{name: "empty", doc: []byte("{}"), want: "ssl-update: error: invalid input: /action: required key is missing\n" +
			"ssl-update: error: invalid input: /cluster_name: required key is missing\n" +
			"ssl-update: error: invalid input: /node_daemon_certificate: required key is missing\n"},
		{name: "create without a node name", doc: sslDoc(c, c.ServerPEM, "", "create"), prefix: true,
			want: "ssl-update: error: invalid input: /node_name: "},
		{name: "unknown action", doc: sslDoc(c, c.ServerPEM, "n1.c1.example.org", "get"), prefix: true,
			want: "ssl-update: error: invalid input: /action: value must be one of "},
		{name: "certificate only", doc: sslDoc(c, c.CertPEM, "node1.c1.example.org", "create"),
			want: "ssl-update: error: invalid input: /node_daemon_certificate: no private key\n"},
		{name: "another cluster's key", doc: otherName, prefix: true,
			want: "ssl-update: error: invalid input: /node_daemon_certificate: the certificate does not match this node's key in /var/lib/ganeti/server.pem\n"},
		{name: "other cluster name", doc: sslDoc(other, other.ServerPEM, "node1.c2.example.org", "delete"), prefix: true,
			want: `ssl-update: error: invalid input: /cluster_name: "c2.example.org" does not match this node's cluster "c1.example.org"`},
		{name: "no server.pem to sign with", doc: sslDoc(c, c.ServerPEM, "node1.c1.example.org", "create"), fresh: true,
			want: "ssl-update: error: invalid input: /action: this node has no /var/lib/ganeti/server.pem to sign a client certificate with\n" +
				"ssl-update: hint: node-daemon-setup installs it and makes client.pem\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := joined(t, c)
			if tc.fresh {
				root = fixture.NewRoot(t)
			}
			before, err := fixture.Tree(root)
			if err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := run(t, root, tc.doc)
			if code != 3 {
				t.Errorf("exit %d, want 3\n%s", code, stderr)
			}
			if tc.prefix && !strings.HasPrefix(stderr, tc.want) || !tc.prefix && stderr != tc.want {
				t.Errorf("stderr:\n%s\nwant\n%s", stderr, tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout: %q", stdout)
			}
			after, _ := fixture.Tree(root)
			if after != before {
				t.Errorf("the tree changed:\n%s\nwas\n%s", after, before)
			}
		})
	}
}
