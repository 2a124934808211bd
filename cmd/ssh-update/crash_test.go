package main

import (
	"testing"

	"github.com/nodejoin/nodejoin/internal/fixture"
)

// TestKilledAtEveryStep kills ssh-update at each write step of a document
// that changes authorized_keys and the public key file: each file is old
// or new, and the next run ends where an uninterrupted one does.
func TestKilledAtEveryStep(t *testing.T) {
	c, err := fixture.NewCluster("c1.example.org")
	if err != nil {
		t.Fatal(err)
	}
	k1, k2, k3 := key(t, "k1"), key(t, "k2"), key(t, "k3")
	d := doc(t, c, `"authorized_keys": ["remove", {"n1": [`+q(k1)+`]}]`, `"public_keys": ["replace_or_add", {"n1": [`+q(k3)+`]}]`)
	fixture.CrashSweep(t, fixture.CrashCase{
		Pkg: "./cmd/ssh-update",
		Doc: d,
		Setup: func(root string) {
			write(t, root, "var/lib/ganeti/ssconf_cluster_name", "c1.example.org\n", 0o444)
			write(t, root, authPath, k1+"\n"+k2+"\n", 0o600)
			write(t, root, pubPath, "n1 "+k1+"\nn2 "+k2+"\n", 0o600)
		},
	})
}
