package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/fixture"
)

// TestConcurrentRunsReportTheClientCertificateOnDisk runs 20
// node-daemon-setup at once on a node without client.pem: each run must
// report the certificate that is on disk at the end. A plan made before
// the lock made a certificate in every run, and the last writer's won.
func TestConcurrentRunsReportTheClientCertificateOnDisk(t *testing.T) {
	c, err := fixture.NewCluster("c1.example.org")
	if err != nil {
		t.Fatal(err)
	}
	root := fixture.NewRoot(t)
	docs := make([][]byte, 20)
	for i := range docs {
		docs[i] = fixture.JSON(c.DaemonSetup("node1.c1.example.org"))
	}
	results := fixture.RunParallel(t, prog, root, docs)

	pem, err := os.ReadFile(filepath.Join(root, "var/lib/ganeti/client.pem"))
	if err != nil {
		t.Fatal(err)
	}
	kp, err := certs.ParseKeyPair(pem)
	if err != nil {
		t.Fatal(err)
	}
	onDisk := certs.Fingerprint(kp.Cert)
	wrong, changed := 0, 0
	for i, res := range results {
		if res.ClientCertificateFingerprint != onDisk {
			t.Errorf("run %d reports client certificate %s, not the one on disk %s", i, res.ClientCertificateFingerprint, onDisk)
			wrong++
		}
		if res.Changed {
			changed++
		}
	}
	if wrong > 0 {
		t.Errorf("%d of %d runs report a client certificate that is not on disk", wrong, len(results))
	}
	// The same document on the same node: one run makes the node so, the
	// others find it so.
	if changed != 1 {
		t.Errorf("%d runs report a change, want 1", changed)
	}
}
