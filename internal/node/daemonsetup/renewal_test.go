package daemonsetup

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/apply"
	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/node/prepare"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
)

// rotation is a cluster certificate's rotation as cluster-renew makes it:
// the new server.pem and the renewal the documents carry.
type rotation struct {
	server  []byte
	renewal *joindoc.CertificateRenewal
}

func rotate(t *testing.T, old []byte, cluster string) rotation {
	t.Helper()
	oldKP, err := certs.ParseKeyPair(old)
	if err != nil {
		t.Fatal(err)
	}
	next, err := certs.NewRenewedClusterCertificate(cluster, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := certs.ParseKeyPair(next)
	if err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	proof, err := certs.NewRenewalProof(oldKP, kp.Cert, end)
	if err != nil {
		t.Fatal(err)
	}
	return rotation{server: next, renewal: &joindoc.CertificateRenewal{
		PreviousCertificate: certOnly(old), Proof: string(proof), WindowEnd: end}}
}

func certOnly(p []byte) string {
	s := string(p)
	return s[strings.Index(s, "-----BEGIN CERTIFICATE-----"):]
}

// TestCertificateRenewal: a node on the old cluster key takes a new one
// only with a proof by that key for the new certificate and its cluster;
// node-daemon-setup and prepare-node-join refuse every other with a clear
// error and change nothing. A document without the field (a Ganeti
// master's) is refused as before.
func TestCertificateRenewal(t *testing.T) {
	c, err := fixture.NewCluster("c1.example.org")
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := fixture.NewCluster("c1.example.org") // same name, another key
	if err != nil {
		t.Fatal(err)
	}
	good := rotate(t, c.ServerPEM, "c1.example.org")
	byStranger := rotate(t, stranger.ServerPEM, "c1.example.org")
	otherCluster := rotate(t, c.ServerPEM, "c2.example.org")
	other := rotate(t, c.ServerPEM, "c1.example.org")
	withProof := func(r rotation, proof string) rotation {
		rr := *r.renewal
		rr.Proof = proof
		return rotation{server: r.server, renewal: &rr}
	}
	for _, tc := range []struct {
		name string
		rot  rotation
		want string // the error; "" accepted
	}{
		{"valid", good, ""},
		{"missing proof", rotation{server: good.server}, "invalid input: /node_daemon_certificate: the certificate does not match this node's key in /var/lib/ganeti/server.pem"},
		{"proof by another key", withProof(good, byStranger.renewal.Proof), "invalid input: /cluster_certificate_renewal/proof: the renewal proof is for another key than the new certificate's"},
		{"previous certificate not the node's", rotation{server: byStranger.server, renewal: byStranger.renewal},
			"invalid input: /cluster_certificate_renewal/previous_certificate: the certificate renewed is not this node's: its key is not the one in /var/lib/ganeti/server.pem"},
		{"wrong cluster name", otherCluster, `invalid input: /cluster_certificate_renewal/proof: the renewal proof is for the cluster "c2.example.org", not "c1.example.org"`},
		{"tampered certificate", rotation{server: other.server, renewal: good.renewal}, "invalid input: /cluster_certificate_renewal/proof: the renewal proof is for another key than the new certificate's"},
		{"garbage proof", withProof(good, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "invalid input: /cluster_certificate_renewal/proof: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := fixture.NewRoot(t)
			cfg, err := nodeconf.Load(root)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(root, "var/lib/ganeti"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, "var/lib/ganeti/server.pem"), c.ServerPEM, 0o440); err != nil {
				t.Fatal(err)
			}
			before, err := fixture.Tree(root)
			if err != nil {
				t.Fatal(err)
			}
			prep := c.Prepare()
			prep.NodeDaemonCertificate, prep.CertificateRenewal = certOnly(tc.rot.server), tc.rot.renewal
			setup := c.DaemonSetup("node1.c1.example.org")
			setup.NodeDaemonCertificate, setup.CertificateRenewal = string(tc.rot.server), tc.rot.renewal
			setup.StartNodeDaemon = false
			log := slog.New(slog.DiscardHandler)
			_, perr := apply.Run(context.Background(), cfg, log, prepare.Planner(cfg, prep), false)
			_, serr := apply.Run(context.Background(), cfg, log, Planner(cfg, setup), false)
			if tc.want == "" {
				if perr != nil || serr != nil {
					t.Fatalf("prepare: %v; setup: %v", perr, serr)
				}
				b, _ := os.ReadFile(filepath.Join(root, "var/lib/ganeti/server.pem"))
				if string(b) != string(tc.rot.server) {
					t.Error("server.pem is not the new one")
				}
				var w joindoc.CertificateRenewal
				b, err := os.ReadFile(filepath.Join(root, "var/lib/nodejoin", nodeconf.CertificateRenewal))
				if err != nil || json.Unmarshal(b, &w) != nil || !w.WindowEnd.Equal(tc.rot.renewal.WindowEnd) || w.PreviousCertificate != tc.rot.renewal.PreviousCertificate {
					t.Errorf("the node daemon's window: %s, %v", b, err)
				}
				return
			}
			for name, err := range map[string]error{"prepare-node-join": perr, "node-daemon-setup": serr} {
				if err == nil || problem.ExitCode(err) != problem.ExitRejected || !strings.HasPrefix(err.Error(), tc.want) {
					t.Errorf("%s: err = %v, want %q", name, err, tc.want)
				}
			}
			if after, _ := fixture.Tree(root); after != before {
				t.Errorf("a refused document changed the node:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}
