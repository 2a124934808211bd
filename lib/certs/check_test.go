package certs

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

func client(t testing.TB, server *KeyPair, cn string, validity time.Duration) []byte {
	t.Helper()
	p, err := NewClientCertificate(server, cn, validity)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sha384Client is a client certificate signed by server with SHA-384.
func sha384Client(t *testing.T, server *KeyPair, cn string) []byte {
	k := newKey(t, "ecdsa")
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		SignatureAlgorithm: x509.ECDSAWithSHA384,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, server.Cert, k.Public(), server.Key)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(keyPEM(t, k, "pkcs8")), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
}

func TestCheckClientCertificate(t *testing.T) {
	c1 := cluster(t, "c1.example.org")
	other := cluster(t, "c2.example.org")
	sameName := cluster(t, "c1.example.org")
	rsaCluster, err := ParseKeyPair([]byte(keyPEM(t, rsaKey(), "pkcs1") + selfSigned(t, rsaKey(), "ganeti.example.com")))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	good := client(t, c1, "node1.example.org", 365*24*time.Hour)
	goodCert, _ := ParseKeyPair(good)
	short := client(t, c1, "node1.example.org", 10*24*time.Hour)
	shortCert, _ := ParseKeyPair(short)
	const day = "2006-01-02 15:04:05Z"
	tests := []struct {
		name    string
		pem     []byte
		server  *KeyPair
		cn      string
		now     time.Time
		wantErr string
	}{
		{"good", good, c1, "node1.example.org", now, ""},
		{"rsa cluster key", client(t, rsaCluster, "node1", 365*24*time.Hour), rsaCluster, "node1", now, ""},
		{"not a key pair", []byte(selfSigned(t, newKey(t, "ecdsa"), "x")), c1, "x", now, "the client certificate does not parse: no private key"},
		{"other node", good, c1, "node2.example.org", now, `the client certificate is for "node1.example.org", not "node2.example.org"`},
		{"other cluster", client(t, other, "node1.example.org", 365*24*time.Hour), c1, "node1.example.org", now, "the client certificate's issuer is not the cluster certificate's subject"},
		{"other cluster of the same name", client(t, sameName, "node1.example.org", 365*24*time.Hour), c1, "node1.example.org", now, "the client certificate is not signed by the cluster certificate: x509: ECDSA verification failure"},
		{"sha-384", sha384Client(t, c1, "n"), c1, "n", now, "the client certificate is signed with ECDSA-SHA384, not with SHA-256"},
		{"not yet valid", good, c1, "node1.example.org", now.Add(-2 * time.Hour), "the client certificate is not valid before " + goodCert.Cert.NotBefore.UTC().Format(day)},
		{"expired", good, c1, "node1.example.org", now.Add(400 * 24 * time.Hour), "the client certificate expired at " + goodCert.Cert.NotAfter.UTC().Format(day)},
		{"expires soon", short, c1, "node1.example.org", now, "the client certificate expires at " + shortCert.Cert.NotAfter.UTC().Format(day) + ", in less than 30 days"},
		{"29 days left", good, c1, "node1.example.org", goodCert.Cert.NotAfter.Add(-29 * 24 * time.Hour), "the client certificate expires at " + goodCert.Cert.NotAfter.UTC().Format(day) + ", in less than 30 days"},
		{"30 days left", good, c1, "node1.example.org", goodCert.Cert.NotAfter.Add(-30 * 24 * time.Hour), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckClientCertificate(tt.pem, tt.server, tt.cn, tt.now)
			if errText(err) != tt.wantErr {
				t.Errorf("error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewClientCertificate(t *testing.T) {
	c1 := cluster(t, "c1.example.org")
	kp, err := ParseKeyPair(client(t, c1, "node1.example.org", 24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	c := kp.Cert
	if c.Subject.CommonName != "node1.example.org" || c.Issuer.CommonName != "c1.example.org" || c.IsCA {
		t.Errorf("subject %s, issuer %s, CA %v", c.Subject, c.Issuer, c.IsCA)
	}
	if c.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Errorf("signature %v", c.SignatureAlgorithm)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool(c1.Cert), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("does not verify as a client: %v", err)
	}
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}
