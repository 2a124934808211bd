package joinservice

import (
	"crypto/tls"
	"encoding/pem"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
)

// rotateCertificate does what cluster-renew --new-cluster-certificate
// leaves on the master once it has the new certificate: the new
// server.pem and the renewal state with the old certificate and the
// proof. It returns the old and the new pin.
func rotateCertificate(t *testing.T, root string) (oldPin, newPin string) {
	t.Helper()
	c, err := cluster.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	newPEM, err := certs.NewRenewedClusterCertificate(c.Settings.ClusterName, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	next, err := certs.ParseKeyPair(newPEM)
	if err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(time.Hour)
	proof, err := certs.NewRenewalProof(c.Server, next.Cert, end)
	if err != nil {
		t.Fatal(err)
	}
	r := &cluster.Renewal{Started: time.Now(), WindowEnd: end, Phase: cluster.RenewNodes, Done: []string{},
		Certificate: true, OldCertificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Server.Cert.Raw})),
		OldClient: string(c.Client.PEM), CertificateProof: string(proof)}
	if err := c.SaveRenewal(r); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.Path(nodeconf.ServerPEM), newPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return joinapi.Pin(c.Server.Cert), joinapi.Pin(next.Cert)
}

func dialPins(addr string, pins ...string) error {
	conn, err := tls.Dial("tcp", addr, joinapi.ClientTLSConfig(pins))
	if err != nil {
		return err
	}
	return conn.Close()
}

// TestServingCertificateRotation: join-service takes a new cluster
// certificate without a restart; during the window a token pinning the
// old key and one pinning the new both reach it, and new tokens pin the
// new key; once the window has ended the old pin is refused.
func TestServingCertificateRotation(t *testing.T) {
	f := newFixture(t)
	if err := dialPins(f.addr, f.pins...); err != nil {
		t.Fatal(err)
	}
	oldPin, newPin := rotateCertificate(t, f.root)
	for _, pin := range []string{oldPin, newPin} {
		if err := dialPins(f.addr, pin); err != nil {
			t.Errorf("during the window, pin %s: %v", pin, err)
		}
	}
	c, err := cluster.Open(f.root)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.svc.pins(c); got[0] != newPin {
		t.Errorf("new tokens pin %v, want %s first", got, newPin)
	}
	// The window ends.
	r, err := c.Renewal()
	if err != nil || r == nil {
		t.Fatal(r, err)
	}
	r.WindowEnd = time.Now().Add(-time.Second)
	if err := c.SaveRenewal(r); err != nil {
		t.Fatal(err)
	}
	if err := dialPins(f.addr, newPin); err != nil {
		t.Errorf("after the window, the new pin: %v", err)
	}
	if err := dialPins(f.addr, oldPin); !errors.Is(err, joinapi.ErrPin) {
		t.Errorf("after the window, the old pin: %v, want %v", err, joinapi.ErrPin)
	}
}
