// Package certs: STAND-IN for main's lib/certs (branch master-side only).
// Delete this file when main's lib/certs lands; the names and signatures
// follow the agreed API.
package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// KeyPair is a private key and its certificate, and the PEM they came from.
type KeyPair struct {
	Key  crypto.Signer
	Cert *x509.Certificate
	PEM  []byte
}

// ParseKeyPair parses a PEM bundle holding one private key and one certificate that match.
func ParseKeyPair(data []byte) (*KeyPair, error) {
	c, err := tls.X509KeyPair(data, data)
	if err != nil {
		return nil, fmt.Errorf("parsing key and certificate: %w", err)
	}
	signer, ok := c.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("parsing key and certificate: key cannot sign")
	}
	return &KeyPair{Key: signer, Cert: c.Leaf, PEM: data}, nil
}

// ParseCertificateOnly parses the first certificate of a PEM bundle.
func ParseCertificateOnly(data []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no certificate found")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

// Fingerprint is the SHA-256 of the certificate, colon hex.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

func newCert(tmpl *x509.Certificate, parent *x509.Certificate, parentKey crypto.Signer) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	pem.Encode(&out, &pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	return out.Bytes(), nil
}

// NewClusterCertificate returns a key and a self-signed CA certificate (ECDSA P-256).
func NewClusterCertificate(cn string, validity time.Duration) ([]byte, error) {
	now := time.Now()
	return newCert(&x509.Certificate{
		Subject: pkix.Name{CommonName: cn}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validity),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, nil, nil)
}

// NewClientCertificate returns a key and a certificate signed by server.
func NewClientCertificate(server *KeyPair, cn string, validity time.Duration) ([]byte, error) {
	now := time.Now()
	return newCert(&x509.Certificate{
		Subject: pkix.Name{CommonName: cn}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validity),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, server.Cert, server.Key)
}

func pool(c *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}

// ServerTLSConfig serves with server's pair and requires client certificates signed by it.
func ServerTLSConfig(server *KeyPair) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{server.Cert.Raw}, PrivateKey: server.Key, Leaf: server.Cert}},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool(server.Cert),
	}
}

// ClientTLSConfig presents client and accepts only a server presenting cluster (no host name check).
func ClientTLSConfig(cluster *x509.Certificate, client *KeyPair) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		Certificates:       []tls.Certificate{{Certificate: [][]byte{client.Cert.Raw}, PrivateKey: client.Key, Leaf: client.Cert}},
		InsecureSkipVerify: true, // replaced by the pin below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !bytes.Equal(raw[0], cluster.Raw) {
				return errors.New("the server does not present the cluster certificate")
			}
			return nil
		},
	}
}
