package joinrecord_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodejoin/nodejoin/internal/apply"
	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/node/joinrecord"
	"github.com/nodejoin/nodejoin/internal/node/prepare"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/ssconf"
	"github.com/nodejoin/nodejoin/internal/txn"
)

func run(t *testing.T, cfg *nodeconf.Config, p apply.Planner) {
	t.Helper()
	if _, err := apply.Run(context.Background(), cfg, slog.New(slog.DiscardHandler), p, false); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, p, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

// The record of a join names what was there before and where its content
// is kept, and for authorized_keys only the lines the cluster added (the
// master's key, there before, is not among them); a rerun that changes
// nothing leaves the record as it is. The state directory levels the
// join made are recorded (the test root has no /var/lib).
func TestRecordOfAJoin(t *testing.T) {
	c, err := fixture.NewCluster("c1.example.org")
	if err != nil {
		t.Fatal(err)
	}
	root := fixture.NewRoot(t)
	cfg, err := nodeconf.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	write(t, cfg.Path("/root/.ssh/authorized_keys"), c.MasterKey+"\n", 0o600)
	write(t, cfg.Path("/etc/ssh/ssh_host_ed25519_key.pub"), "own key\n", 0o644)
	doc := c.Prepare()
	run(t, cfg, prepare.Planner(cfg, doc))

	rec, err := joinrecord.Read(cfg)
	if err != nil || rec == nil {
		t.Fatalf("record %v, %v", rec, err)
	}
	if rec.ClusterName != "c1.example.org" || !slices.Equal(rec.StateDirs, []string{"/var/lib", "/var/lib/nodejoin"}) {
		t.Errorf("record %+v", rec)
	}
	ak := rec.FileOf("/root/.ssh/authorized_keys")
	if ak == nil || len(ak.Lines) != 1 || strings.Contains(ak.Lines[0], strings.Fields(c.MasterKey)[1]) || ak.Before == nil {
		t.Fatalf("authorized_keys: %+v", ak)
	}
	hk := rec.FileOf("/etc/ssh/ssh_host_ed25519_key.pub")
	if hk == nil || hk.Before == nil || hk.Before.Backup == "" || hk.Before.Mode != 0o644 {
		t.Fatalf("host key: %+v", hk)
	}
	if b, err := os.ReadFile(cfg.Path(hk.Before.Backup)); err != nil || string(b) != "own key\n" || joinrecord.Digest(b) != hk.Before.SHA256 {
		t.Errorf("the backup %s: %q, %v", hk.Before.Backup, b, err)
	}
	if priv := rec.FileOf("/etc/ssh/ssh_host_ed25519_key"); priv == nil || priv.Before != nil || !priv.Secret {
		t.Errorf("the private host key, new: %+v", priv)
	}
	fi, err := os.Stat(cfg.Path(joinrecord.NodePath(cfg)))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the record's mode: %v, %v", fi, err)
	}

	first, _ := os.ReadFile(cfg.Path(joinrecord.NodePath(cfg)))
	run(t, cfg, prepare.Planner(cfg, doc))
	if again, _ := os.ReadFile(cfg.Path(joinrecord.NodePath(cfg))); !bytes.Equal(first, again) {
		t.Error("a rerun that changes nothing changed the record")
	}
}

// Plans that only keep a joined node up to date (noded's ssconf update)
// make no record on a node that has none, and add to one that has.
func TestRecordOnlyFollows(t *testing.T) {
	root := fixture.NewRoot(t)
	cfg, err := nodeconf.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(cfg.Path(cfg.DataDir), 0o755); err != nil {
		t.Fatal(err)
	}
	update := func(v string) apply.Planner {
		return joinrecord.Planner(cfg, "c1.example.org", func() (*apply.Plan, error) {
			return &apply.Plan{Items: ssconf.Items(cfg, map[string]string{"cluster_name": "c1.example.org", "node_list": v})}, nil
		}, false)
	}
	run(t, cfg, update("a"))
	if rec, err := joinrecord.Read(cfg); rec != nil || err != nil {
		t.Fatalf("a record made by an update: %+v, %v", rec, err)
	}
	join := joinrecord.Planner(cfg, "c1.example.org", func() (*apply.Plan, error) {
		return &apply.Plan{Items: []txn.Item{{NodePath: "/etc/nodejoin/x", Data: []byte("x\n"), Mode: 0o644, UID: os.Geteuid(), GID: os.Getegid()}}}, nil
	}, true)
	run(t, cfg, join)
	run(t, cfg, update("b"))
	rec, err := joinrecord.Read(cfg)
	if err != nil || rec == nil {
		t.Fatal(err)
	}
	nl := rec.FileOf("/var/lib/ganeti/ssconf_node_list")
	if nl == nil || nl.Before == nil || nl.Before.Backup == "" || nl.Wrote.SHA256 != joinrecord.Digest([]byte("b\n")) {
		t.Errorf("ssconf_node_list after the update: %+v", nl)
	}
}

// A record anyone but its owner can write is not believed.
func TestRecordMustBePrivate(t *testing.T) {
	root := fixture.NewRoot(t)
	cfg, err := nodeconf.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	write(t, cfg.Path(joinrecord.NodePath(cfg)), `{"cluster_name": "c", "files": [], "dirs": []}`, 0o600)
	if err := os.Chmod(cfg.Path(joinrecord.NodePath(cfg)), 0o622); err != nil {
		t.Fatal(err)
	}
	if _, err := joinrecord.Read(cfg); err == nil || !strings.Contains(err.Error(), "not believed") {
		t.Errorf("a record writable by others: %v", err)
	}
	write(t, cfg.Path(joinrecord.NodePath(cfg)), `{"cluster_name": "c", "files": [{"path": "/etc/ssh/k", "before": {"mode": 384, "uid": 0, "gid": 0, "sha256": "", "backup": "/etc/shadow"}, "wrote": null}], "dirs": []}`, 0o600)
	if err := os.Chmod(cfg.Path(joinrecord.NodePath(cfg)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := joinrecord.Read(cfg); err == nil || !strings.Contains(err.Error(), "is not a backup of") {
		t.Errorf("a record naming another file as a backup: %v", err)
	}
}
