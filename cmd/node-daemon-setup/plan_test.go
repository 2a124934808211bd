package main

import (
	"bytes"
	"testing"

	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
)

// TestPlannerMakesTheClientCertificateOnce: the plan made again under the
// lock takes the client certificate the run's first plan made.
func TestPlannerMakesTheClientCertificateOnce(t *testing.T) {
	c, err := fixture.NewCluster("c1.example.org")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := nodeconf.Load(fixture.NewRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	plan := planner(cfg, c.DaemonSetup("node1.c1.example.org"))
	client := func() []byte {
		p, err := plan()
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range p.Items {
			if it.NodePath == "/var/lib/ganeti/client.pem" {
				if !it.Secret {
					t.Errorf("client.pem is not marked secret")
				}
				return it.Data
			}
		}
		t.Fatal("no client.pem in the plan")
		return nil
	}
	first, again := client(), client()
	if !bytes.Equal(first, again) {
		t.Errorf("the second plan made another client certificate")
	}
}
