package main

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/nodejoin/nodejoin/internal/apply"
	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/node/daemonsetup"
	"github.com/nodejoin/nodejoin/internal/node/prepare"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/sshkeys"
)

// TestKilledAtEveryStep kills node-cleanup at each step of leaving a
// joined node (its own host key and authorized_keys put back, the
// cluster's files removed, directories the join made removed at commit):
// each file is old or new, and the next run ends where an uninterrupted
// one does. Every run starts from a copy of one joined node, so that the
// keys and backup names the join made are the same in each.
func TestKilledAtEveryStep(t *testing.T) {
	c, err := fixture.NewCluster("c1.example.org")
	if err != nil {
		t.Fatal(err)
	}
	joined := fixture.NewRoot(t)
	priv, pub, err := sshkeys.Generate(sshkeys.Ed25519, 256, "own@node")
	if err != nil {
		t.Fatal(err)
	}
	for p, data := range map[string]string{"etc/ssh/ssh_host_ed25519_key": string(priv), "etc/ssh/ssh_host_ed25519_key.pub": string(pub),
		"root/.ssh/authorized_keys": c.MasterKey + "\n"} {
		p = filepath.Join(joined, p)
		_ = os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := nodeconf.Load(joined)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []apply.Planner{prepare.Planner(cfg, c.Prepare()), daemonsetup.Planner(cfg, c.DaemonSetup("node1.c1.example.org"))} {
		if _, err := apply.Run(context.Background(), cfg, slog.New(slog.DiscardHandler), p, false); err != nil {
			t.Fatal(err)
		}
	}
	fixture.CrashSweep(t, fixture.CrashCase{
		Pkg: "./cmd/node-cleanup",
		Doc: []byte(`{"cluster_name": "c1.example.org"}`),
		Setup: func(root string) {
			if out, err := exec.Command("cp", "-a", joined+"/.", root).CombinedOutput(); err != nil {
				t.Fatalf("copying the joined node: %v: %s", err, out)
			}
		},
	})
}
