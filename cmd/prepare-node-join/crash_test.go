package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/sshkeys"
)

// TestKilledAtEveryStep kills prepare-node-join at each write step: each
// file is old or new, and the next run ends where an uninterrupted one does.
func TestKilledAtEveryStep(t *testing.T) {
	c, err := fixture.NewCluster("c1.example.org")
	if err != nil {
		t.Fatal(err)
	}
	// The node's own root key exists and is kept, so both runs write the
	// same bytes; the host keys and authorized_keys are replaced.
	priv, pub, err := sshkeys.Generate(sshkeys.Ed25519, 256, "root@node")
	if err != nil {
		t.Fatal(err)
	}
	fixture.CrashSweep(t, fixture.CrashCase{
		Pkg: "./cmd/prepare-node-join",
		Doc: fixture.JSON(c.Prepare()),
		Setup: func(root string) {
			files := map[string]string{
				"etc/ssh/ssh_host_ed25519_key":     "old private",
				"etc/ssh/ssh_host_ed25519_key.pub": "old public",
				"root/.ssh/id_ed25519":             string(priv),
				"root/.ssh/id_ed25519.pub":         string(pub),
				"root/.ssh/authorized_keys":        "# old\n",
			}
			for p, data := range files {
				p = filepath.Join(root, p)
				_ = os.MkdirAll(filepath.Dir(p), 0o700)
				if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		},
	})
}
