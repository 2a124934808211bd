package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// backdate makes a new certificate valid an hour before now, so that a node
// whose clock is a little behind the master's accepts it at once.
const backdate = time.Hour

// NewClusterCertificate makes a new cluster certificate: an ECDSA P-256 key
// and a self-signed certificate for cn (callers use the cluster name) that
// may sign client certificates. The PEM holds the key (PKCS#8) and then the
// certificate, the server.pem layout.
func NewClusterCertificate(cn string, validity time.Duration) ([]byte, error) {
	return newClusterCertificate(cn, validity, pkix.Name{CommonName: cn})
}

// newClusterCertificate is NewClusterCertificate with the given subject.
func newClusterCertificate(cn string, validity time.Duration, subject pkix.Name) ([]byte, error) {
	if err := checkArgs(cn, validity); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the cluster key: %w", err)
	}
	tmpl, err := template(cn, validity)
	if err != nil {
		return nil, err
	}
	tmpl.Subject = subject
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("signing the cluster certificate: %w", err)
	}
	return encodePair(key, der)
}

// NewClientCertificate makes a client certificate for cn (the node name)
// signed by the cluster key with SHA-256, as Ganeti's client.pem: a new key
// of Ganeti's own type and size (GanetiClientKey), then the certificate.
func NewClientCertificate(server *KeyPair, cn string, validity time.Duration) ([]byte, error) {
	return NewClientCertificateWithKey(server, cn, validity, GanetiClientKey)
}

// NewClientCertificateWithKey is NewClientCertificate with a new key of
// spec's type and size.
func NewClientCertificateWithKey(server *KeyPair, cn string, validity time.Duration, spec KeySpec) ([]byte, error) {
	if err := checkArgs(cn, validity); err != nil {
		return nil, err
	}
	alg, err := sha256Algorithm(server.Key)
	if err != nil {
		return nil, err
	}
	key, err := spec.generate()
	if err != nil {
		return nil, fmt.Errorf("generating the client key: %w", err)
	}
	tmpl, err := template(cn, validity)
	if err != nil {
		return nil, err
	}
	tmpl.SignatureAlgorithm = alg
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, server.Cert, key.Public(), server.Key)
	if err != nil {
		return nil, fmt.Errorf("signing the client certificate: %w", err)
	}
	return encodePair(key, der)
}

// sha256Algorithm picks the SHA-256 signature for the cluster key. Ed25519
// hashes with SHA-512 internally, so it cannot give what Ganeti's
// X509_CERT_SIGN_DIGEST (sha256) promises.
func sha256Algorithm(key crypto.Signer) (x509.SignatureAlgorithm, error) {
	switch key.(type) {
	case *ecdsa.PrivateKey:
		return x509.ECDSAWithSHA256, nil
	case *rsa.PrivateKey:
		return x509.SHA256WithRSA, nil
	case ed25519.PrivateKey:
		return 0, errors.New("signing with SHA-256 needs an RSA or ECDSA cluster key, not Ed25519")
	}
	return 0, errors.New("signing with SHA-256 needs an RSA or ECDSA cluster key")
}

func checkArgs(cn string, validity time.Duration) error {
	if cn == "" {
		return errors.New("the certificate needs a common name")
	}
	if validity <= 0 {
		return fmt.Errorf("the certificate validity must be positive, not %s", validity)
	}
	return nil
}

func template(cn string, validity time.Duration) (*x509.Certificate, error) {
	// 128 random bits: unique without coordination (Ganeti used the time
	// in seconds, which two nodes joining at once can share).
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("making a serial number: %w", err)
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(validity),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, nil
}

func encodePair(key crypto.Signer, certDER []byte) ([]byte, error) {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding the private key: %w", err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})...), nil
}

// Fingerprint returns "SHA256:" and the lower-case hex SHA-256 of the
// certificate's DER: the value openssl x509 -fingerprint -sha256 prints,
// without its colons and upper case, so it can be compared as a string; the
// prefix names the hash and hex tells it apart from SSH's base64 form.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return "SHA256:" + hex.EncodeToString(sum[:])
}
