package main

import (
	"testing"

	"github.com/nodejoin/nodejoin/internal/fixture"
)

// TestKilledAtEveryStep kills ssl-update create at each write step: the
// client certificate is old or new (never readable by others), and the
// next run ends where an uninterrupted one does (with one more backup if
// the killed run had committed: create renews on every run).
func TestKilledAtEveryStep(t *testing.T) {
	c, err := fixture.NewCluster("c1.example.org")
	if err != nil {
		t.Fatal(err)
	}
	fixture.CrashSweep(t, fixture.CrashCase{
		Pkg: "./cmd/ssl-update",
		Doc: sslDoc(c, c.ServerPEM, "node1.c1.example.org", "create"),
		Setup: func(root string) {
			write(t, root, "var/lib/ganeti/ssconf_cluster_name", c.Name+"\n", 0o444)
			write(t, root, "var/lib/ganeti/server.pem", string(c.ServerPEM), 0o440)
			write(t, root, "var/lib/ganeti/client.pem", "old client\n", 0o440)
		},
		Random: []string{"var/lib/ganeti/client.pem"},
		Renews: true,
	})
}
