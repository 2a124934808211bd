package prepare

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
	plan := Planner(cfg, c.Prepare())
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

// TestPlannerChecksPairsOnce: the plan made again under the lock does not
// check the document's key pairs again (an RSA key's check is the largest
// part of a plan), and still refuses a pair that does not match.
func TestPlannerChecksPairsOnce(t *testing.T) {
	c, err := fixture.NewCluster("c1.example.org")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := nodeconf.Load(fixture.NewRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	parsePair = func(kind sshkeys.Kind, private, public string) (*sshkeys.Pair, error) {
		calls++
		return sshkeys.ParsePair(kind, private, public)
	}
	t.Cleanup(func() { parsePair = sshkeys.ParsePair })
	doc := c.Prepare()
	plan := Planner(cfg, doc)
	for range 2 {
		if _, err := plan(); err != nil {
			t.Fatal(err)
		}
	}
	if want := len(doc.SSHHostKey); calls != want {
		t.Errorf("two plans checked %d key pairs, want the document's %d once each", calls, want)
	}

	doc.SSHHostKey[1].Public = doc.SSHHostKey[0].Public
	if _, err := Planner(cfg, doc)(); err == nil {
		t.Errorf("a host key pair that does not match was accepted")
	}
}
