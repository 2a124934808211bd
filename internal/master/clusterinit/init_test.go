package clusterinit_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/master/clusterinit"
	"github.com/nodejoin/nodejoin/internal/master/clustertest"
	"github.com/nodejoin/nodejoin/internal/problem"
)

func initCluster(t *testing.T) (string, *cluster.Cluster) {
	root := t.TempDir()
	return root, clustertest.New(t, clusterinit.InitOptions{Root: root, ClusterName: "c1.example.org", MasterNode: "master.example.org", MasterIP: "192.0.2.1"})
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
	if c.Settings != (cluster.Settings{ClusterName: "c1.example.org", MasterNode: "master.example.org", SSHKeyType: "ed25519", SSHKeyBits: 256, NodeDaemonPort: 1811}) {
		t.Errorf("settings = %+v", c.Settings)
	}
	if c.Client.Cert.CheckSignatureFrom(c.Server.Cert) != nil {
		t.Error("client.pem is not signed by server.pem")
	}

	// A second init is refused, and changes nothing.
	_, err := clusterinit.PlanInit(clusterinit.InitOptions{Root: root, ClusterName: "c2.example.org"})
	var rej *problem.RejectedError
	if !asRejected(err, &rej) || !strings.Contains(err.Error(), "a cluster already exists on this master") {
		t.Fatalf("second init: err = %v", err)
	}
	// --force replaces the cluster but keeps the host and root keys.
	hostKey, _ := os.ReadFile(filepath.Join(root, "etc/ssh/ssh_host_ed25519_key"))
	p, err := clusterinit.PlanInit(clusterinit.InitOptions{Root: root, ClusterName: "c2.example.org", MasterNode: "master.example.org", Force: true})
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

// TestForceRefusedWithNodes: --force would make another cluster whose
// certificate every recorded node refuses; with a node recorded it is
// refused, names cluster-renew, and changes nothing.
func TestForceRefusedWithNodes(t *testing.T) {
	root, _ := initCluster(t)
	list := filepath.Join(root, "var/lib/ganeti/ssconf_node_list")
	if err := os.WriteFile(list, []byte("master.example.org\nnode1.example.org\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	server, _ := os.ReadFile(filepath.Join(root, "var/lib/ganeti/server.pem"))
	_, err := clusterinit.PlanInit(clusterinit.InitOptions{Root: root, ClusterName: "c2.example.org", MasterNode: "master.example.org", Force: true})
	var rej *problem.RejectedError
	if !asRejected(err, &rej) || !strings.Contains(err.Error(), "--force: this cluster has 1 recorded nodes besides the master (node1.example.org)") {
		t.Fatalf("err = %v", err)
	}
	if h := strings.Join(problem.Hints(err), "\n"); !strings.Contains(h, "cluster-renew --new-host-keys --new-hmac-key --new-cluster-certificate") {
		t.Errorf("hints %q name no cluster-renew", h)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "var/lib/ganeti/server.pem")); string(b) != string(server) {
		t.Error("the refused --force changed server.pem")
	}
}

func asRejected(err error, rej **problem.RejectedError) bool {
	var r *problem.RejectedError
	ok := errors.As(err, &r)
	*rej = r
	return ok
}

func TestInitRejects(t *testing.T) {
	for _, tc := range []struct {
		o       clusterinit.InitOptions
		wantErr string
	}{
		{clusterinit.InitOptions{ClusterName: "bad_name"}, `invalid input: --cluster-name: "bad_name" is not a valid host name: byte 3 ('_') is not a letter, digit, '-' or '.'`},
		{clusterinit.InitOptions{ClusterName: "c1", MasterNode: "m", MasterIP: "300.1.1.1"}, `invalid input: --master-ip: "300.1.1.1" is not an IP address`},
		{clusterinit.InitOptions{ClusterName: "c1", MasterNode: "m", SSHKeyType: "dsa"}, `invalid input: --ssh-key-type: "dsa" is not one of rsa, ecdsa, ed25519`},
		{clusterinit.InitOptions{ClusterName: "c1", MasterNode: "m", SSHKeyType: "rsa", SSHKeyBits: 1024}, `invalid input: --ssh-key-bits: rsa keys must have 2048 to 16384 bits, not 1024`},
	} {
		tc.o.Root = t.TempDir()
		_, err := clusterinit.PlanInit(tc.o)
		if err == nil || err.Error() != tc.wantErr {
			t.Errorf("%+v: err = %v, want %q", tc.o, err, tc.wantErr)
		}
		if entries, _ := os.ReadDir(tc.o.Root); len(entries) != 0 {
			t.Errorf("%+v: wrote %d entries", tc.o, len(entries))
		}
	}
}

// The dry run says what the transaction would do: a file whose content is
// the same but whose mode is not is "chmod", and applying puts the mode
// right.
func TestPlanActionsAreTheTransactions(t *testing.T) {
	root, _ := initCluster(t)
	p := filepath.Join(root, "var/lib/ganeti/ssconf_cluster_name")
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	plan, err := clusterinit.PlanInit(clusterinit.InitOptions{Root: root, ClusterName: "c1.example.org", MasterNode: "master.example.org", MasterIP: "192.0.2.1", Force: true})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]string{}
	for _, f := range plan.Files {
		actions[f.Path] = f.Action
	}
	if got := actions["/var/lib/ganeti/ssconf_cluster_name"]; got != "chmod" {
		t.Errorf("ssconf_cluster_name at 0644: action %q, want chmod", got)
	}
	if got := actions["/etc/ssh/ssh_host_ed25519_key.pub"]; got != "" {
		t.Errorf("--force plans the kept host key: %q", got)
	}
	if err := plan.Apply(context.Background(), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o444 {
		t.Errorf("after apply: %v, %v; want mode 0444", fi.Mode(), err)
	}
}
