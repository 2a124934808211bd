package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/sshkeys"
)

// run runs ssh-update in-process on root with doc on standard input.
func run(t *testing.T, root string, doc []byte, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cli.Env{Stdin: bytes.NewReader(doc), Stdout: &out, Stderr: &errb}
	code = cli.Run(prog, env, append([]string{"--root", root}, args...), program.Run)
	return code, out.String(), errb.String()
}

func key(t *testing.T, comment string) string {
	t.Helper()
	_, pub, err := sshkeys.Generate(sshkeys.Ed25519, 256, comment)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(pub))
}

func read(t *testing.T, root, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
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

const authPath = "root/.ssh/authorized_keys"
const pubPath = "var/lib/ganeti/ganeti_pub_keys"

// A document as Ganeti's backend builds it (_InitSshUpdateData plus the
// instructions), in Ganeti's key order.
func doc(t *testing.T, c *fixture.Cluster, parts ...string) []byte {
	t.Helper()
	cert, _ := json.Marshal(string(c.CertPEM))
	s := `{"cluster_name": "` + c.Name + `", "node_daemon_certificate": ` + string(cert)
	for _, p := range parts {
		s += ", " + p
	}
	return []byte(s + "}\n")
}

func q(s string) string { b, _ := json.Marshal(s); return string(b) }

// TestAuthorizedKeys follows Ganeti's TestUpdateAuthorizedKeys: add then
// remove, and a remove takes every occurrence of a key.
func TestAuthorizedKeys(t *testing.T) {
	c, err := fixture.NewCluster("c1.example.org")
	if err != nil {
		t.Fatal(err)
	}
	root := fixture.NewRoot(t)
	k11, k12, k21 := key(t, "k11"), key(t, "k12"), key(t, "k21")
	code, _, stderr := run(t, root, doc(t, c, `"authorized_keys": ["add", {"node1": [`+q(k11)+`, `+q(k12)+`], "node2": [`+q(k21)+`]}]`))
	if code != 0 {
		t.Fatalf("add: exit %d\n%s", code, stderr)
	}
	if got, want := read(t, root, authPath), k11+"\n"+k12+"\n"+k21+"\n"; got != want {
		t.Errorf("after add:\n%s\nwant\n%s", got, want)
	}
	fi, err := os.Stat(filepath.Join(root, "root/.ssh"))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("~/.ssh: %v %v, want 0700", fi.Mode(), err)
	}
	code, _, stderr = run(t, root, doc(t, c, `"authorized_keys": ["remove", {"node1": [`+q(k12)+`], "node2": [`+q(k21)+`]}]`))
	if code != 0 {
		t.Fatalf("remove: exit %d\n%s", code, stderr)
	}
	if got, want := read(t, root, authPath), k11+"\n"; got != want {
		t.Errorf("after remove: %q, want %q", got, want)
	}
}

// TestPublicKeyFile follows Ganeti's TestUpdatePubKeyFile and the actions
// its backend sends: override writes the document's keys in its order,
// remove is per node, replace_or_add replaces a node's keys, add appends
// what is missing, clear empties the file.
func TestPublicKeyFile(t *testing.T) {
	c, err := fixture.NewCluster("c1.example.org")
	if err != nil {
		t.Fatal(err)
	}
	root := fixture.NewRoot(t)
	k11, k12, k21, k31, kNew := key(t, "k11"), key(t, "k12"), key(t, "k21"), key(t, "k31"), key(t, "new")
	steps := []struct {
		name, part, want string
	}{
		{"override", `"public_keys": ["override", {"node2": [` + q(k21) + `], "node1": [` + q(k11) + `, ` + q(k12) + `]}]`,
			"node2 " + k21 + "\nnode1 " + k11 + "\nnode1 " + k12 + "\n"},
		{"remove", `"public_keys": ["remove", {"node1": [` + q(k12) + `], "node3": [` + q(k31) + `]}]`,
			"node2 " + k21 + "\n"},
		{"add", `"public_keys": ["add", {"node3": [` + q(k31) + `], "node2": [` + q(k21) + `]}]`,
			"node2 " + k21 + "\nnode3 " + k31 + "\n"},
		{"replace_or_add", `"public_keys": ["replace_or_add", {"node2": [` + q(kNew) + `]}]`,
			"node3 " + k31 + "\nnode2 " + kNew + "\n"},
		{"clear", `"public_keys": ["clear", {}]`, ""},
	}
	for _, s := range steps {
		code, _, stderr := run(t, root, doc(t, c, s.part))
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s", s.name, code, stderr)
		}
		if got := read(t, root, pubPath); got != s.want {
			t.Errorf("%s:\n%s\nwant\n%s", s.name, got, s.want)
		}
		fi, _ := os.Stat(filepath.Join(root, pubPath))
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %s is %v, want 0600", s.name, pubPath, fi.Mode())
		}
	}
	// The same add again changes nothing.
	code, stdout, _ := run(t, root, doc(t, c, `"public_keys": ["clear", {}]`))
	if code != 0 || !strings.Contains(stdout, `"changed": false`) {
		t.Errorf("clear of an empty file: exit %d\n%s", code, stdout)
	}
}

// TestGenerate makes a new root key pair with Ganeti's suffix, keeps the
// old one's backups, authorizes the new key and reports it.
func TestGenerate(t *testing.T) {
	c, err := fixture.NewCluster("c1.example.org")
	if err != nil {
		t.Fatal(err)
	}
	root := fixture.NewRoot(t)
	write(t, root, "root/.ssh/id_rsa_master_tmp", "old private\n", 0o600)
	code, stdout, stderr := run(t, root, doc(t, c, `"generate": ["rsa", 2048, "_master_tmp"]`))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var res joindoc.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	pub := read(t, root, "root/.ssh/id_rsa_master_tmp.pub")
	if _, err := sshkeys.ParsePair(sshkeys.RSA, read(t, root, "root/.ssh/id_rsa_master_tmp"), pub); err != nil {
		t.Errorf("the new pair: %v", err)
	}
	if res.RootPublicKey != strings.TrimSpace(pub) {
		t.Errorf("reported %q, wrote %q", res.RootPublicKey, pub)
	}
	if got := read(t, root, authPath); got != pub {
		t.Errorf("authorized_keys %q, want the new key %q", got, pub)
	}
	backups, _ := filepath.Glob(filepath.Join(root, "root/.ssh/id_rsa_master_tmp.backup-*"))
	if len(backups) != 1 || read(t, root, strings.TrimPrefix(backups[0], root)) != "old private\n" {
		t.Errorf("backups of the old private key: %v", backups)
	}
	if strings.Contains(stdout+stderr, "PRIVATE KEY") {
		t.Error("the private key was printed")
	}
}

// TestRefusals: every document that fails validation exits 3 and changes
// nothing, including the parts of it that were sound.
func TestRefusals(t *testing.T) {
	c, err := fixture.NewCluster("c1.example.org")
	if err != nil {
		t.Fatal(err)
	}
	other, err := fixture.NewCluster("c2.example.org")
	if err != nil {
		t.Fatal(err)
	}
	k := key(t, "k")
	goodAuth := `"authorized_keys": ["add", {"node1": [` + q(k) + `]}]`
	tests := []struct {
		name string
		doc  []byte
		want string
	}{
		{"empty", []byte("{}"), "ssh-update: error: invalid input: /cluster_name: required key is missing\n"},
		{"unknown key", doc(t, c, `"force": true`), "ssh-update: error: invalid input: /force: unknown key\n"},
		{"other cluster", doc(t, other, goodAuth),
			"ssh-update: error: invalid input: /cluster_name: \"c2.example.org\" does not match this node's cluster \"c1.example.org\" (/var/lib/ganeti/ssconf_cluster_name)\n"},
		{"private key given", []byte(`{"cluster_name": "c1.example.org", "node_daemon_certificate": ` + q(string(c.ServerPEM)) + `, ` + goodAuth + `}`),
			"ssh-update: error: invalid input: /node_daemon_certificate: a private key was given; only the cluster certificate belongs here\n"},
		{"another cluster's certificate", []byte(`{"cluster_name": "c1.example.org", "node_daemon_certificate": ` + q(string(other.CertPEM)) + `, ` + goodAuth + `}`),
			"ssh-update: error: invalid input: /node_daemon_certificate: the certificate does not match this node's key in /var/lib/ganeti/server.pem\n"},
		{"authorized_keys override", doc(t, c, `"authorized_keys": ["override", {"node1": [`+q(k)+`]}]`),
			"ssh-update: error: invalid input: /authorized_keys/0: \"override\" is not an action for authorized_keys: only add and remove are (as in Ganeti)\n"},
		{"unknown action", doc(t, c, `"public_keys": ["merge", {}]`), "ssh-update: error: invalid input: /public_keys/0: value must be one of "},
		// Ganeti's TItems passes a one-element list and then crashes.
		{"one-element action", doc(t, c, `"public_keys": ["clear"]`), "ssh-update: error: invalid input: /public_keys: "},
		{"bad key line", doc(t, c, goodAuth, `"public_keys": ["add", {"node1": ["ssh-ed25519 notbase64"]}]`),
			"ssh-update: error: invalid input: /public_keys/1/node1/0: not a public key line\n"},
		{"two lines", doc(t, c, `"public_keys": ["add", {"node1": [`+q(k+"\n"+k)+`]}]`),
			"ssh-update: error: invalid input: /public_keys/1/node1/0: a key line must not contain a line break\n"},
		{"suffix leaves ~/.ssh", doc(t, c, `"generate": ["rsa", 2048, "/../../etc/x"]`), "ssh-update: error: invalid input: /generate/2: "},
		{"rsa too small", doc(t, c, goodAuth, `"generate": ["rsa", 512, ""]`), "ssh-update: error: invalid input: /generate/1: "},
		{"node with a space", doc(t, c, `"public_keys": ["add", {"node 1": [`+q(k)+`]}]`), "ssh-update: error: invalid input: /public_keys/1/node 1: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := fixture.NewRoot(t)
			write(t, root, "var/lib/ganeti/ssconf_cluster_name", "c1.example.org\n", 0o444)
			write(t, root, "var/lib/ganeti/server.pem", string(c.ServerPEM), 0o440)
			write(t, root, authPath, "# mine\n", 0o600)
			write(t, root, pubPath, "node9 "+k+"\n", 0o600)
			before, err := fixture.Tree(root)
			if err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := run(t, root, tc.doc)
			if code != 3 {
				t.Errorf("exit %d, want 3\n%s", code, stderr)
			}
			if !strings.HasPrefix(stderr, tc.want) {
				t.Errorf("stderr:\n%s\nwant it to start with\n%s", stderr, tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout: %q", stdout)
			}
			after, err := fixture.Tree(root)
			if err != nil {
				t.Fatal(err)
			}
			if after != before {
				t.Errorf("the tree changed:\n%s\nwas\n%s", after, before)
			}
		})
	}
}
