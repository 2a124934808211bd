package certs

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"
)

// cluster makes a cluster certificate and parses it.
func cluster(t testing.TB, cn string) *KeyPair {
	t.Helper()
	p, err := NewClusterCertificate(cn, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ParseKeyPair(p)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

var rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func newKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	switch kind {
	case "rsa":
		return rsaKey()
	case "ecdsa":
		k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	t.Fatalf("unknown kind %q", kind)
	return nil
}

// selfSigned returns a self-signed certificate PEM for key; a v3 CA, as
// NewClusterCertificate makes, but for any key type.
func selfSigned(t testing.TB, key crypto.Signer, cn string) string {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func keyPEM(t testing.TB, key any, format string) string {
	t.Helper()
	var b pem.Block
	var err error
	switch format {
	case "pkcs1":
		b = pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key.(*rsa.PrivateKey))}
	case "sec1":
		b.Type = "EC PRIVATE KEY"
		b.Bytes, err = x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
	case "pkcs8":
		b.Type = "PRIVATE KEY"
		b.Bytes, err = x509.MarshalPKCS8PrivateKey(key)
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&b))
}

func x25519Key(t testing.TB) *ecdh.PrivateKey {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// leaks returns an input line of 16 or more characters that err repeats.
func leaks(err error, input string) string {
	for l := range strings.SplitSeq(input, "\n") {
		if l = strings.TrimSpace(l); len(l) >= 16 && strings.Contains(err.Error(), l) {
			return l
		}
	}
	return ""
}
