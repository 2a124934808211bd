package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"testing"
	"time"
)

func TestNewClusterCertificate(t *testing.T) {
	before := time.Now()
	p, err := NewClusterCertificate("c1.example.org", 90*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := pem.Decode(p)
	if first == nil || first.Type != "PRIVATE KEY" {
		t.Fatalf("first block is not a PKCS#8 key")
	}
	kp, err := ParseKeyPair(p)
	if err != nil {
		t.Fatal(err)
	}
	c := kp.Cert
	k, ok := kp.Key.(*ecdsa.PrivateKey)
	switch {
	case !ok || k.Curve != elliptic.P256():
		t.Errorf("key is %T, want ECDSA P-256", kp.Key)
	case c.Subject.CommonName != "c1.example.org" || c.Issuer.CommonName != "c1.example.org":
		t.Errorf("subject %s, issuer %s", c.Subject, c.Issuer)
	case !c.IsCA || !c.BasicConstraintsValid:
		t.Error("not a CA")
	case c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageDigitalSignature:
		t.Errorf("key usage %v", c.KeyUsage)
	case !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}):
		t.Errorf("ext key usage %v", c.ExtKeyUsage)
	case c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128:
		t.Errorf("serial %v", c.SerialNumber)
	case c.SignatureAlgorithm != x509.ECDSAWithSHA256:
		t.Errorf("signature %v", c.SignatureAlgorithm)
	case c.NotBefore.After(before.Add(-time.Hour)) || c.NotBefore.Before(before.Add(-time.Hour-time.Minute)):
		t.Errorf("NotBefore %v, want an hour before %v", c.NotBefore, before)
	case c.NotAfter.Sub(before) < 90*24*time.Hour-time.Minute || c.NotAfter.Sub(before) > 90*24*time.Hour+time.Minute:
		t.Errorf("NotAfter %v", c.NotAfter)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	p2, _ := NewClusterCertificate("c1.example.org", time.Hour)
	kp2, _ := ParseKeyPair(p2)
	if kp2.Cert.SerialNumber.Cmp(c.SerialNumber) == 0 || SamePublicKey(kp2.Key.Public(), kp.Key.Public()) {
		t.Error("two new cluster certificates share a serial or key")
	}
}

func TestNewCertificateRefuses(t *testing.T) {
	c := cluster(t, "c")
	edK := newKey(t, "ed25519")
	ed, err := ParseKeyPair([]byte(keyPEM(t, edK, "pkcs8") + selfSigned(t, edK, "d")))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		run     func() error
		wantErr string
	}{
		{"cluster without cn", func() error { _, err := NewClusterCertificate("", time.Hour); return err }, "the certificate needs a common name"},
		{"cluster without validity", func() error { _, err := NewClusterCertificate("c", 0); return err }, "the certificate validity must be positive, not 0s"},
		{"client without cn", func() error { _, err := NewClientCertificate(c, "", time.Hour); return err }, "the certificate needs a common name"},
		{"client negative validity", func() error { _, err := NewClientCertificate(c, "n", -time.Hour); return err }, "the certificate validity must be positive, not -1h0m0s"},
		{"ed25519 cluster key", func() error { _, err := NewClientCertificate(ed, "n", time.Hour); return err }, "signing with SHA-256 needs an RSA or ECDSA cluster key, not Ed25519"},
	}
	for _, tt := range tests {
		if err := tt.run(); errText(err) != tt.wantErr {
			t.Errorf("%s: error = %v, want %q", tt.name, err, tt.wantErr)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
