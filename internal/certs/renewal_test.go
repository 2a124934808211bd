package certs

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

// renewed makes a rotation of old: the new cluster certificate and the
// proof by old's key, valid for an hour.
func renewed(t *testing.T, old *KeyPair, cn string) (*KeyPair, *x509.Certificate) {
	t.Helper()
	p, err := NewRenewedClusterCertificate(cn, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ParseKeyPair(p)
	if err != nil {
		t.Fatal(err)
	}
	proofPEM, err := NewRenewalProof(old, kp.Cert, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	proof, err := ParseCertificateOnly(proofPEM)
	if err != nil {
		t.Fatal(err)
	}
	return kp, proof
}

// TestRenewalProof: the proof by the old key for the new certificate and
// the cluster name passes; every other is refused and says why.
func TestRenewalProof(t *testing.T) {
	old := cluster(t, "c1.example.org")
	next, proof := renewed(t, old, "c1.example.org")
	if err := VerifyRenewalProof(old.Cert, next.Cert, proof, "c1.example.org"); err != nil {
		t.Fatal(err)
	}
	if next.Cert.Subject.String() == old.Cert.Subject.String() {
		t.Errorf("the renewed certificate has the old one's subject %q", old.Cert.Subject)
	}
	stranger := cluster(t, "c1.example.org") // same name, another key
	other, _ := renewed(t, old, "c1.example.org")
	_, strangerProof := renewed(t, stranger, "c1.example.org")
	otherClusterPair, otherCluster := renewed(t, old, "c2.example.org")
	nodeClient := clientPair(t, old, "c1.example.org") // signed by the old key, but no CA
	for _, tc := range []struct {
		name             string
		previous, proven *x509.Certificate
		proof            *x509.Certificate
		cluster          string
		want             string
	}{
		{"signed by another key", old.Cert, next.Cert, strangerProof, "c1.example.org", "the renewal proof is for another key than the new certificate's"},
		{"by another key for this certificate", stranger.Cert, next.Cert, proof, "c1.example.org", "the renewal proof is not signed by the previous cluster key"},
		{"for another cluster", old.Cert, otherClusterPair.Cert, otherCluster, "c1.example.org", `the renewal proof is for the cluster "c2.example.org", not "c1.example.org"`},
		{"the document names another cluster", old.Cert, next.Cert, proof, "c2.example.org", `the renewal proof is for the cluster "c1.example.org", not "c2.example.org"`},
		{"another certificate than the proven one", old.Cert, other.Cert, proof, "c1.example.org", "the renewal proof is for another key than the new certificate's"},
		{"a client certificate", old.Cert, nodeClient.Cert, nodeClient.Cert, "c1.example.org", "the renewal proof is not a certificate that may sign"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyRenewalProof(tc.previous, tc.proven, tc.proof, tc.cluster)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
	// A proof whose signed part was changed is refused.
	tampered := *proof
	tampered.RawTBSCertificate = append([]byte(nil), proof.RawTBSCertificate...)
	tampered.RawTBSCertificate[len(tampered.RawTBSCertificate)-1] ^= 1
	if err := VerifyRenewalProof(old.Cert, next.Cert, &tampered, "c1.example.org"); err == nil ||
		!strings.Contains(err.Error(), "not signed by the previous cluster key") {
		t.Errorf("tampered proof: %v", err)
	}
}

// TestWindowTLS: during the window a node daemon on the new certificate
// accepts clients of the old one, and the master's client picks the old client certificate for a
// node daemon still on the old one; after the window only the new is
// accepted.
func TestWindowTLS(t *testing.T) {
	old := cluster(t, "c1.example.org")
	next, proof := renewed(t, old, "c1.example.org")
	oldClient, newClient := clientPair(t, old, "master"), clientPair(t, next, "master")
	open := &Window{Previous: old.Cert, Proof: proof, Until: time.Now().Add(time.Hour)}
	closed := &Window{Previous: old.Cert, Proof: proof, Until: time.Now().Add(-time.Second)}
	master := ClientTLSConfigAny([]*x509.Certificate{next.Cert, old.Cert}, []*KeyPair{newClient, oldClient})
	masterAfter := ClientTLSConfig(next.Cert, newClient)
	for _, tc := range []struct {
		name   string
		server *tls.Config
		client *tls.Config
		want   string // in the server's error; "" none
	}{
		{"renewed node, old client, window open", ServerTLSConfigWindow(next, open), ClientTLSConfigAny([]*x509.Certificate{next.Cert}, []*KeyPair{oldClient}), ""},
		{"renewed node, master in the window", ServerTLSConfigWindow(next, open), master, ""},
		{"old node, master in the window", ServerTLSConfig(old), master, ""},
		{"renewed node, master after the window", ServerTLSConfigWindow(next, closed), masterAfter, ""},
		{"renewed node, old client after the window", ServerTLSConfigWindow(next, closed),
			forceClient(ClientTLSConfigAny([]*x509.Certificate{next.Cert}, []*KeyPair{oldClient})), "certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			serr, _ := exchange(t, tc.server, tc.client)
			switch {
			case tc.want == "" && serr != nil:
				t.Errorf("server: %v", serr)
			case tc.want != "" && (serr == nil || !strings.Contains(serr.Error(), tc.want)):
				t.Errorf("server error = %v, want %q", serr, tc.want)
			}
		})
	}
}

// forceClient presents the config's only client certificate whatever CAs
// the server names.
func forceClient(cfg *tls.Config) *tls.Config {
	cert := cfg.Certificates[0]
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	return cfg
}
