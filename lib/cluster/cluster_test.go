package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nodejoin/nodejoin/lib/certs"
	"github.com/nodejoin/nodejoin/lib/cli"
)

func initCluster(t *testing.T) (string, *Cluster) {
	t.Helper()
	root := t.TempDir()
	p, err := PlanInit(InitOptions{Root: root, ClusterName: "c1.example.org", MasterNode: "master.example.org", MasterIP: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(context.Background(), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	c, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	return root, c
}

func TestInit(t *testing.T) {
	root, c := initCluster(t)
	for _, tc := range []struct {
		path string
		mode os.FileMode
		want string // prefix of the content, "" to skip
	}{
		{"var/lib/ganeti/server.pem", 0o600, "-----BEGIN PRIVATE KEY-----"},
		{"var/lib/ganeti/client.pem", 0o600, "-----BEGIN PRIVATE KEY-----"},
		{"var/lib/ganeti/hmac.key", 0o600, ""},
		{"var/lib/ganeti/ssconf_cluster_name", 0o444, "c1.example.org\n"},
		{"var/lib/ganeti/ssconf_node_list", 0o444, "master.example.org\n"},
		{"var/lib/ganeti/ssconf_node_primary_ips", 0o444, "master.example.org 192.0.2.1\n"},
		{"var/lib/ganeti/ssconf_offline_nodes", 0o444, ""},
		{"var/lib/ganeti/ssconf_primary_ip_family", 0o444, "2\n"},
		{"var/lib/ganeti/known_hosts", 0o644, "c1.example.org ssh-ed25519 "},
		{"var/lib/ganeti/ganeti_pub_keys", 0o600, "master.example.org ssh-ed25519 "},
		{"etc/ssh/ssh_host_ed25519_key", 0o600, "-----BEGIN OPENSSH PRIVATE KEY-----"},
		{"etc/ssh/ssh_host_ed25519_key.pub", 0o644, "ssh-ed25519 "},
		{"root/.ssh/id_ed25519", 0o600, "-----BEGIN OPENSSH PRIVATE KEY-----"},
		{"var/lib/nodejoin/cluster.json", 0o644, "{"},
	} {
		p := filepath.Join(root, tc.path)
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", tc.path, err)
			continue
		}
		if fi.Mode().Perm() != tc.mode {
			t.Errorf("%s: mode %04o, want %04o", tc.path, fi.Mode().Perm(), tc.mode)
		}
		b, _ := os.ReadFile(p)
		if !strings.HasPrefix(string(b), tc.want) {
			t.Errorf("%s: content %.40q, want prefix %q", tc.path, b, tc.want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, "var/lib/ganeti/hmac.key")); len(strings.TrimSpace(string(b))) != 64 {
		t.Errorf("hmac.key: %d characters, want 64 hex", len(strings.TrimSpace(string(b))))
	}
	if c.Settings != (Settings{ClusterName: "c1.example.org", MasterNode: "master.example.org", SSHKeyType: "ed25519", SSHKeyBits: 256, NodeDaemonPort: 1811}) {
		t.Errorf("settings = %+v", c.Settings)
	}
	if c.Client.Cert.CheckSignatureFrom(c.Server.Cert) != nil {
		t.Error("client.pem is not signed by server.pem")
	}

	// A second init is refused, and changes nothing.
	_, err := PlanInit(InitOptions{Root: root, ClusterName: "c2.example.org"})
	var rej *cli.RejectedError
	if !asRejected(err, &rej) || !strings.Contains(err.Error(), "a cluster already exists on this master") {
		t.Fatalf("second init: err = %v", err)
	}
	// --force replaces the cluster but keeps the host and root keys.
	hostKey, _ := os.ReadFile(filepath.Join(root, "etc/ssh/ssh_host_ed25519_key"))
	p, err := PlanInit(InitOptions{Root: root, ClusterName: "c2.example.org", MasterNode: "master.example.org", Force: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range p.Files {
		if strings.HasPrefix(f.Path, "/etc/ssh/") || strings.HasPrefix(f.Path, "/root/") {
			t.Errorf("--force would write %s", f.Path)
		}
	}
	if err := p.Apply(context.Background(), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/ssh/ssh_host_ed25519_key")); string(b) != string(hostKey) {
		t.Error("--force replaced the host key")
	}
}

func asRejected(err error, rej **cli.RejectedError) bool {
	var r *cli.RejectedError
	ok := errors.As(err, &r)
	*rej = r
	return ok
}

func TestInitRejects(t *testing.T) {
	for _, tc := range []struct {
		o       InitOptions
		wantErr string
	}{
		{InitOptions{ClusterName: "bad_name"}, `invalid input: --cluster-name: "bad_name" is not a valid host name: byte 3 ('_') is not a letter, digit, '-' or '.'`},
		{InitOptions{ClusterName: "c1", MasterNode: "m", MasterIP: "300.1.1.1"}, `invalid input: --master-ip: "300.1.1.1" is not an IP address`},
		{InitOptions{ClusterName: "c1", MasterNode: "m", SSHKeyType: "dsa"}, `invalid input: --ssh-key-type: "dsa" is not one of rsa, ecdsa, ed25519`},
		{InitOptions{ClusterName: "c1", MasterNode: "m", SSHKeyType: "rsa", SSHKeyBits: 1024}, `invalid input: --ssh-key-bits: rsa keys must have 2048 to 16384 bits, not 1024`},
	} {
		tc.o.Root = t.TempDir()
		_, err := PlanInit(tc.o)
		if err == nil || err.Error() != tc.wantErr {
			t.Errorf("%+v: err = %v, want %q", tc.o, err, tc.wantErr)
		}
		if entries, _ := os.ReadDir(tc.o.Root); len(entries) != 0 {
			t.Errorf("%+v: wrote %d entries", tc.o, len(entries))
		}
	}
}

func TestDocuments(t *testing.T) {
	_, c := initCluster(t)
	p, err := c.PrepareDoc()
	if err != nil {
		t.Fatal(err)
	}
	if p.ClusterName != "c1.example.org" || len(p.SSHHostKey) != 1 || p.SSHHostKey[0].Kind != "ed25519" ||
		!strings.HasPrefix(p.NodeDaemonCertificate, "-----BEGIN CERTIFICATE-----") ||
		strings.Contains(p.NodeDaemonCertificate, "PRIVATE") || len(p.AuthorizedKeys["master.example.org"]) != 1 ||
		p.SSHKeyType != "ed25519" || p.SSHKeyBits != 256 {
		b, _ := json.Marshal(p)
		t.Errorf("prepare document: %.300s", b)
	}
	d, err := c.DaemonSetupDoc("node10.example.org", "192.0.2.10")
	if err != nil {
		t.Fatal(err)
	}
	if d.Ssconf["node_list"] != "master.example.org\nnode10.example.org" ||
		d.Ssconf["node_primary_ips"] != "master.example.org 192.0.2.1\nnode10.example.org 192.0.2.10" ||
		d.Ssconf["cluster_name"] != "c1.example.org" || !d.StartNodeDaemon || d.NodeName != "node10.example.org" ||
		!strings.Contains(d.NodeDaemonCertificate, "PRIVATE KEY") || len(d.HMACKey) != 65 {
		t.Errorf("daemon setup document: %+v", d.Ssconf)
	}
}

// 200 concurrent joins leave exactly 200 entries in every list.
func TestRecordNodeConcurrent(t *testing.T) {
	root, c := initCluster(t)
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each join opens the cluster itself, as separate node-add runs would.
			c, err := Open(root)
			if err == nil {
				err = c.RecordNode(Node{Name: fmt.Sprintf("node%d.example.org", i), PrimaryIP: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1),
					RootPublicKey: fmt.Sprintf("ssh-ed25519 AAAAkey%d root@node%d", i, i)})
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	count := func(name string) int {
		b, err := os.ReadFile(c.Path(name))
		if err != nil {
			t.Fatal(err)
		}
		return len(lines(string(b)))
	}
	for _, f := range []string{"ssconf_node_list", "ssconf_online_nodes", "ssconf_node_primary_ips", PubKeys} {
		if got := count(f); got != n+1 {
			t.Errorf("%s: %d lines, want %d", f, got, n+1)
		}
	}
	kh, _ := os.ReadFile(c.Path(KnownHosts))
	if got := strings.Count(strings.Fields(string(kh))[0], ","); got != n {
		t.Errorf("known_hosts: %d node names beside the alias, want %d", got, n)
	}
	nl, _ := os.ReadFile(c.Path("ssconf_node_list"))
	if !strings.HasPrefix(string(nl), "master.example.org\nnode0.example.org\nnode1.example.org\nnode2.example.org\n") {
		t.Errorf("node_list not nice-sorted: %.100q", nl)
	}
	// Recording again changes nothing.
	before, _ := os.ReadFile(c.Path(PubKeys))
	if err := c.RecordNode(Node{Name: "node7.example.org", PrimaryIP: "10.0.0.8", RootPublicKey: "ssh-ed25519 AAAAkey7 root@node7"}); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(c.Path(PubKeys)); string(after) != string(before) {
		t.Error("recording a node twice changed ganeti_pub_keys")
	}
	if left, _ := filepath.Glob(c.Path(".*tmp*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestNiceSort(t *testing.T) {
	in := []string{"node10", "node2", "node1", "a", "node02x"}
	niceSort(in)
	if got := strings.Join(in, " "); got != "a node1 node2 node02x node10" {
		t.Errorf("niceSort = %s", got)
	}
}

// The master's client.pem is what nodes trust for writes: cluster-init
// lists its digest in master_candidates_certs, and what node-add sends and
// records keeps it listed even when the master's file lost it or names an
// older certificate.
func TestMasterCandidateCerts(t *testing.T) {
	root, c := initCluster(t)
	want := "master.example.org=" + certs.Digest(c.Client.Cert)
	p := filepath.Join(root, "var/lib/ganeti/ssconf_master_candidates_certs")
	if b, err := os.ReadFile(p); err != nil || string(b) != want+"\n" {
		t.Fatalf("after cluster-init: %q, %v; want %q", b, err, want)
	}
	other := "node1.example.org=AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01"
	stale := "master.example.org=00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33"
	for _, old := range []string{"", stale, stale + "\n" + other, "-"} {
		if old == "-" {
			os.Remove(p)
		} else {
			os.Chmod(p, 0o644)
			if err := os.WriteFile(p, []byte(old+"\n"), 0o444); err != nil {
				t.Fatal(err)
			}
		}
		wantNow := want
		if strings.Contains(old, other) {
			wantNow = want + "\n" + other
		}
		d, err := c.DaemonSetupDoc("node10.example.org", "192.0.2.10")
		if err != nil || d.Ssconf["master_candidates_certs"] != wantNow {
			t.Errorf("master's file %q: node-daemon-setup gets %q, %v; want %q", old, d.Ssconf["master_candidates_certs"], err, wantNow)
		}
		if err := c.RecordNode(Node{Name: "node10.example.org", PrimaryIP: "192.0.2.10"}); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(p); err != nil || string(b) != wantNow+"\n" {
			t.Errorf("master's file %q: after recording a node %q, %v; want %q", old, b, err, wantNow)
		}
	}
}
