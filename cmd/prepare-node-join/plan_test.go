package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/sshkeys"
)

// TestPlannerGeneratesOnce: the plan made again under the lock takes the
// root key the run's first plan generated (no second generation while the
// lock is held), unless the node has a sound key by then.
func TestPlannerGeneratesOnce(t *testing.T) {
	c, err := fixture.NewCluster("c1.example.org")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := nodeconf.Load(fixture.NewRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	plan := planner(cfg, c.Prepare())
	first, err := plan()
	if err != nil {
		t.Fatal(err)
	}
	again, err := plan()
	if err != nil {
		t.Fatal(err)
	}
	if first.Result.RootPublicKey == "" || again.Result.RootPublicKey != first.Result.RootPublicKey {
		t.Errorf("the second plan has root key %q, want the first's %q", again.Result.RootPublicKey, first.Result.RootPublicKey)
	}

	// Another run wrote its key meanwhile: that one is kept.
	priv, pub, err := sshkeys.Generate(sshkeys.Ed25519, 256, "root@other")
	if err != nil {
		t.Fatal(err)
	}
	dir := cfg.Path("/root/.ssh")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"id_ed25519": priv, "id_ed25519.pub": pub} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	third, err := plan()
	if err != nil {
		t.Fatal(err)
	}
	if third.Result.RootPublicKey != string(pub[:len(pub)-1]) {
		t.Errorf("the plan has root key %q, want the one on the node %q", third.Result.RootPublicKey, pub)
	}
}
