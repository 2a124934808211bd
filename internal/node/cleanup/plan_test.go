package cleanup

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodejoin/nodejoin/internal/apply"
	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/node/daemonsetup"
	"github.com/nodejoin/nodejoin/internal/node/joinrecord"
	"github.com/nodejoin/nodejoin/internal/node/prepare"
	"github.com/nodejoin/nodejoin/internal/node/sshupdate"
	"github.com/nodejoin/nodejoin/internal/node/sslupdate"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
	"github.com/nodejoin/nodejoin/internal/sshkeys"
	"github.com/nodejoin/nodejoin/internal/txn"
)

const masterLine = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBjZ9zDC2uMRWOkkqfg+CnFeHnHOFQPUh7q4PcEHJSNM operator@master\n"

func write(t *testing.T, root, rel, data string, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, p apply.Planner, dryRun bool) joindoc.Result {
	t.Helper()
	res, err := apply.Run(context.Background(), planCfg, slog.New(slog.DiscardHandler), p, dryRun)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// planCfg is the configuration apply.Run is given; set by each test.
var planCfg *nodeconf.Config

func tree(t *testing.T, cfg *nodeconf.Config) string {
	t.Helper()
	s, err := fixture.Tree(cfg.Root)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func cleanupDoc() *joindoc.Cleanup { return &joindoc.Cleanup{ClusterName: "c1.example.org"} }

// After the join and node-cleanup, the node's tree is what it was before,
// byte for byte and mode for mode: its own host key back, the cluster's
// authorized line gone and the master's kept, no ssconf, certificate,
// key, record, backup or state directory left. A second run changes
// nothing.
func TestLeaveRestoresTheTree(t *testing.T) {
	cfg, _, before := joinedWith(t)
	if tree(t, cfg) == before {
		t.Fatal("the join changed nothing")
	}
	dry := run(t, Planner(cfg, cleanupDoc()), true)
	if !dry.DryRun || !dry.Changed || tree(t, cfg) == before {
		t.Fatalf("dry run: %+v", dry)
	}
	res := run(t, Planner(cfg, cleanupDoc()), false)
	if got := tree(t, cfg); got != before {
		t.Errorf("after node-cleanup the tree differs:\ngot:\n%s\nwant:\n%s", got, before)
	}
	if len(res.Kept) != 0 {
		t.Errorf("kept %+v; want nothing", res.Kept)
	}
	if !slices.Equal(res.Restarted, []string{"sshd"}) || !slices.Equal(res.Stopped, []string{"node daemon"}) {
		t.Errorf("restarted %v, stopped %v; want sshd, node daemon", res.Restarted, res.Stopped)
	}
	again := run(t, Planner(cfg, cleanupDoc()), false)
	if again.Changed || len(again.Warnings) != 1 {
		t.Errorf("a second run: %+v", again)
	}
}

func joinedWith(t *testing.T) (*nodeconf.Config, *fixture.Cluster, string) {
	t.Helper()
	root := fixture.NewRoot(t)
	var err error
	if planCfg, err = nodeconf.Load(root); err != nil {
		t.Fatal(err)
	}
	cfg, c, before := joinedAt(t, root)
	planCfg = cfg
	return cfg, c, before
}

func joinedAt(t *testing.T, root string) (*nodeconf.Config, *fixture.Cluster, string) {
	t.Helper()
	priv, pub, err := sshkeys.Generate(sshkeys.Ed25519, 256, "root@node1")
	if err != nil {
		t.Fatal(err)
	}
	write(t, root, "etc/ssh/ssh_host_ed25519_key", string(priv), 0o600)
	write(t, root, "etc/ssh/ssh_host_ed25519_key.pub", string(pub), 0o644)
	write(t, root, "root/.ssh/authorized_keys", masterLine, 0o600)
	before, err := fixture.Tree(root)
	if err != nil {
		t.Fatal(err)
	}
	c, err := fixture.NewCluster("c1.example.org")
	if err != nil {
		t.Fatal(err)
	}
	run(t, prepare.Planner(planCfg, c.Prepare()), false)
	run(t, daemonsetup.Planner(planCfg, c.DaemonSetup("node1.c1.example.org")), false)
	return planCfg, c, before
}

// What the operator changed since the join is kept and reported: a line
// added to authorized_keys stays (the cluster's lines go), a host key
// replaced by hand stays with the backup of the node's own named.
func TestLeaveKeepsOperatorChanges(t *testing.T) {
	cfg, _, _ := joinedWith(t)
	ak := cfg.Path("/root/.ssh/authorized_keys")
	f, err := os.OpenFile(ak, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	const mine = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHa1EKnTdFQ0dCPs4VvV0YXZbRHgzSbjVvXrAAhs7Rle mine@laptop"
	if _, err := f.WriteString(mine + "\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	write(t, cfg.Root, "etc/ssh/ssh_host_ed25519_key.pub", "changed by hand\n", 0o644)

	res := run(t, Planner(cfg, cleanupDoc()), false)
	if got := readFile(t, ak); got != masterLine+mine+"\n" {
		t.Errorf("authorized_keys after: %q", got)
	}
	if got := readFile(t, cfg.Path("/etc/ssh/ssh_host_ed25519_key.pub")); got != "changed by hand\n" {
		t.Errorf("the hand-changed host key: %q", got)
	}
	var paths []string
	for _, k := range res.Kept {
		paths = append(paths, k.Path)
		if k.Path == "/etc/ssh/ssh_host_ed25519_key.pub" && !strings.Contains(k.Backup, ".backup-") {
			t.Errorf("the kept host key names no backup: %+v", k)
		}
	}
	if !slices.Equal(paths, []string{"/etc/ssh/ssh_host_ed25519_key.pub", "/root/.ssh/authorized_keys"}) {
		t.Errorf("kept %+v", res.Kept)
	}
	if _, err := os.Stat(cfg.Path("/var/lib/ganeti/ssconf_cluster_name")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ssconf_cluster_name: %v", err)
	}
}

// Refusals change nothing: another cluster's name, a backup of the node's
// own key that is gone or changed, cluster files without a record.
func TestLeaveRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		doc   *joindoc.Cleanup
		setup func(t *testing.T, cfg *nodeconf.Config)
		where string
	}{
		{"other cluster", &joindoc.Cleanup{ClusterName: "c2.example.org"}, nil, "/cluster_name"},
		{"backup gone", cleanupDoc(), func(t *testing.T, cfg *nodeconf.Config) {
			m, _ := filepath.Glob(cfg.Path("/etc/ssh/ssh_host_ed25519_key.backup-*"))
			if len(m) != 1 {
				t.Fatalf("backups: %v", m)
			}
			if err := os.Remove(m[0]); err != nil {
				t.Fatal(err)
			}
		}, "/etc/ssh/ssh_host_ed25519_key.backup-"},
		{"backup changed", cleanupDoc(), func(t *testing.T, cfg *nodeconf.Config) {
			m, _ := filepath.Glob(cfg.Path("/etc/ssh/ssh_host_ed25519_key.pub.backup-*"))
			if len(m) != 1 {
				t.Fatalf("backups: %v", m)
			}
			if err := os.WriteFile(m[0], []byte("x\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "/etc/ssh/ssh_host_ed25519_key.pub.backup-"},
		{"no record", cleanupDoc(), func(t *testing.T, cfg *nodeconf.Config) {
			if err := os.Remove(cfg.Path("/var/lib/nodejoin/join-record.json")); err != nil {
				t.Fatal(err)
			}
		}, "/var/lib/nodejoin/join-record.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, _ := joinedWith(t)
			if tc.setup != nil {
				tc.setup(t, cfg)
			}
			was := tree(t, cfg)
			_, err := apply.Run(context.Background(), cfg, slog.New(slog.DiscardHandler), Planner(cfg, tc.doc), false)
			var rej *problem.RejectedError
			if !errors.As(err, &rej) || !strings.HasPrefix(rej.Problems[0].Where, tc.where) {
				t.Fatalf("err %v; want a refusal at %s", err, tc.where)
			}
			if got := tree(t, cfg); got != was {
				t.Errorf("a refusal changed the node:\n%s\nwas:\n%s", got, was)
			}
		})
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A file of the node's own that a later cluster run removed (as ssl-update
// removes a certificate) comes back from the backup that run kept.
func TestLeavePutsBackWhatALaterRunRemoved(t *testing.T) {
	cfg, _, before := joinedWith(t)
	gone := joinrecord.Planner(cfg, "c1.example.org", func() (*apply.Plan, error) {
		return &apply.Plan{Items: []txn.Item{{NodePath: "/etc/nodejoin/node.json", Remove: true}}}, nil
	}, false)
	run(t, gone, false)
	if _, err := os.Stat(cfg.Path("/etc/nodejoin/node.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("node.json: %v", err)
	}
	run(t, Planner(cfg, cleanupDoc()), false)
	if got := tree(t, cfg); got != before {
		t.Errorf("after node-cleanup the tree differs:\ngot:\n%s\nwant:\n%s", got, before)
	}
}

// What ssh-update and ssl-update change after the join (a Ganeti master's
// renew-crypto) is the cluster's, not the operator's: node-cleanup takes
// it away as it does the join's, and keeps nothing.
func TestLeaveAfterRotation(t *testing.T) {
	cfg, c, before := joinedWith(t)
	run(t, sslupdate.Planner(cfg, &joindoc.SSLUpdate{ClusterName: c.Name, NodeDaemonCertificate: string(c.ServerPEM),
		NodeName: "node1.c1.example.org", Action: joindoc.CryptoCreate}), false)
	_, pub, err := sshkeys.Generate(sshkeys.Ed25519, 256, "root@master")
	if err != nil {
		t.Fatal(err)
	}
	run(t, sshupdate.Planner(cfg, &joindoc.SSHUpdate{ClusterName: c.Name,
		AuthorizedKeys: &joindoc.KeyAction{Action: joindoc.ActionAdd, Keys: joindoc.KeyMap{{Node: "master", Keys: []string{strings.TrimSpace(string(pub))}}}}}), false)
	res := run(t, Planner(cfg, cleanupDoc()), false)
	if len(res.Kept) != 0 {
		t.Errorf("kept %+v; want nothing", res.Kept)
	}
	if got := tree(t, cfg); got != before {
		t.Errorf("after node-cleanup the tree differs:\ngot:\n%s\nwant:\n%s", got, before)
	}
}
