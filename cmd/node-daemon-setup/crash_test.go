package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/fixture"
)

// TestKilledAtEveryStep kills node-daemon-setup at each write step: each
// file is old or new, and the next run ends where an uninterrupted one does.
func TestKilledAtEveryStep(t *testing.T) {
	c, err := fixture.NewCluster("c1.example.org")
	if err != nil {
		t.Fatal(err)
	}
	doc := c.DaemonSetup("node1.c1.example.org")
	server, err := certs.ParseKeyPair(c.ServerPEM)
	if err != nil {
		t.Fatal(err)
	}
	// A valid client.pem is kept, so both runs write the same bytes.
	client, err := certs.NewClientCertificate(server, doc.NodeName, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	fixture.CrashSweep(t, fixture.CrashCase{
		Pkg: "./cmd/node-daemon-setup",
		Doc: fixture.JSON(doc),
		Setup: func(root string) {
			files := map[string]string{
				"var/lib/ganeti/ssconf_cluster_name": "c1.example.org\n",
				"var/lib/ganeti/ssconf_node_list":    "master.c1.example.org\n",
				"var/lib/ganeti/hmac.key":            "old hmac\n",
				"var/lib/ganeti/server.pem":          string(c.ServerPEM),
				"var/lib/ganeti/client.pem":          string(client),
			}
			for p, data := range files {
				p = filepath.Join(root, p)
				_ = os.MkdirAll(filepath.Dir(p), 0o755)
				if err := os.WriteFile(p, []byte(data), 0o440); err != nil {
					t.Fatal(err)
				}
			}
		},
	})
}

// TestKilledAtEveryStepFreshNode does the same on a node without a data
// directory: everything is created, and a new client.pem generated (its
// content differs between runs), so that no temporary copy of a 0440 key
// file is ever readable by its group.
func TestKilledAtEveryStepFreshNode(t *testing.T) {
	c, err := fixture.NewCluster("c1.example.org")
	if err != nil {
		t.Fatal(err)
	}
	fixture.CrashSweep(t, fixture.CrashCase{
		Pkg:   "./cmd/node-daemon-setup",
		Doc:   fixture.JSON(c.DaemonSetup("node1.c1.example.org")),
		Setup: func(string) {},
		// The join record holds the digest of the new client.pem.
		Random: []string{"var/lib/ganeti/client.pem", "var/lib/nodejoin/join-record.json"},
	})
}
