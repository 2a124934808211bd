package certs

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
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
	p256 := KeySpec{Type: "ecdsa", Bits: 256}
	// What nodejoin made before it followed Ganeti's key: ECDSA P-256.
	ecClient, err := NewClientCertificateWithKey(c1, "node1.example.org", 365*24*time.Hour, p256)
	if err != nil {
		t.Fatal(err)
	}
	rsa4096, err := NewClientCertificateWithKey(c1, "node1.example.org", 365*24*time.Hour, KeySpec{Type: "rsa", Bits: 4096})
	if err != nil {
		t.Fatal(err)
	}
	const day = "2006-01-02 15:04:05Z"
	tests := []struct {
		name    string
		pem     []byte
		server  *KeyPair
		cn      string
		spec    KeySpec
		now     time.Time
		wantErr string
	}{
		{"good", good, c1, "node1.example.org", GanetiClientKey, now, ""},
		{"rsa cluster key", client(t, rsaCluster, "node1", 365*24*time.Hour), rsaCluster, "node1", GanetiClientKey, now, ""},
		{"not a key pair", []byte(selfSigned(t, newKey(t, "ecdsa"), "x")), c1, "x", GanetiClientKey, now, "the client certificate does not parse: no private key"},
		{"other node", good, c1, "node2.example.org", GanetiClientKey, now, `the client certificate is for "node1.example.org", not "node2.example.org"`},
		{"other cluster", client(t, other, "node1.example.org", 365*24*time.Hour), c1, "node1.example.org", GanetiClientKey, now, "the client certificate's issuer is not the cluster certificate's subject"},
		{"other cluster of the same name", client(t, sameName, "node1.example.org", 365*24*time.Hour), c1, "node1.example.org", GanetiClientKey, now, "the client certificate is not signed by the cluster certificate: x509: ECDSA verification failure"},
		{"sha-384", sha384Client(t, c1, "n"), c1, "n", p256, now, "the client certificate is signed with ECDSA-SHA384, not with SHA-256"},
		{"not yet valid", good, c1, "node1.example.org", GanetiClientKey, now.Add(-2 * time.Hour), "the client certificate is not valid before " + goodCert.Cert.NotBefore.UTC().Format(day)},
		{"expired", good, c1, "node1.example.org", GanetiClientKey, now.Add(400 * 24 * time.Hour), "the client certificate expired at " + goodCert.Cert.NotAfter.UTC().Format(day)},
		{"expires soon", short, c1, "node1.example.org", GanetiClientKey, now, "the client certificate expires at " + shortCert.Cert.NotAfter.UTC().Format(day) + ", in less than 30 days"},
		{"29 days left", good, c1, "node1.example.org", GanetiClientKey, goodCert.Cert.NotAfter.Add(-29 * 24 * time.Hour), "the client certificate expires at " + goodCert.Cert.NotAfter.UTC().Format(day) + ", in less than 30 days"},
		{"ecdsa p-256 kept where asked for", ecClient, c1, "node1.example.org", p256, now, ""},
		{"ecdsa p-256 weaker than Ganeti's", ecClient, c1, "node1.example.org", GanetiClientKey, now, "the client key is ecdsa of 256 bits, not rsa of at least 2048"},
		{"rsa where ecdsa is asked for", good, c1, "node1.example.org", p256, now, "the client key is rsa of 2048 bits, not ecdsa of at least 256"},
		{"rsa 4096 is at least 2048", rsa4096, c1, "node1.example.org", GanetiClientKey, now, ""},
		{"30 days left", good, c1, "node1.example.org", GanetiClientKey, goodCert.Cert.NotAfter.Add(-30 * 24 * time.Hour), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckClientCertificate(tt.pem, tt.server, tt.cn, tt.spec, tt.now)
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
	// Ganeti's RSA_KEY_BITS: gnt-cluster verify calls anything smaller weak.
	if k, ok := kp.Key.(*rsa.PrivateKey); !ok || k.N.BitLen() != 2048 {
		t.Errorf("client key is %T, want RSA of 2048 bits", kp.Key)
	}
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

func TestNewClientCertificateWithKey(t *testing.T) {
	c1 := cluster(t, "c1.example.org")
	for _, tt := range []struct {
		spec    KeySpec
		wantErr string
	}{
		{KeySpec{Type: "rsa", Bits: 3072}, ""},
		{KeySpec{Type: "ecdsa", Bits: 384}, ""},
		{KeySpec{Type: "rsa", Bits: 1024}, "generating the client key: rsa keys must have 2048 to 16384 bits, not 1024"},
		{KeySpec{Type: "ecdsa", Bits: 512}, "generating the client key: ecdsa keys must have 256, 384 or 521 bits, not 512"},
		{KeySpec{Type: "ed25519", Bits: 256}, `generating the client key: unknown key type "ed25519" (want rsa or ecdsa)`},
	} {
		p, err := NewClientCertificateWithKey(c1, "n", time.Hour, tt.spec)
		if errText(err) != tt.wantErr {
			t.Errorf("%+v: error = %v, want %q", tt.spec, err, tt.wantErr)
		}
		if err != nil {
			continue
		}
		kp, err := ParseKeyPair(p)
		if err != nil {
			t.Fatal(err)
		}
		bits := 0
		switch k := kp.Key.(type) {
		case *rsa.PrivateKey:
			bits = k.N.BitLen()
		case *ecdsa.PrivateKey:
			bits = k.Curve.Params().BitSize
		}
		if bits != tt.spec.Bits || tt.spec.Fits(kp.Key.Public()) != nil {
			t.Errorf("%+v: got a %T of %d bits", tt.spec, kp.Key, bits)
		}
	}
}
