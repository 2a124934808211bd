package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// ErrPrivateKeyGiven is returned where only a certificate belongs but a
// private key came along (Ganeti: "No private key may be given"): the key
// would otherwise travel to, or be written on, a place that must not have it.
var ErrPrivateKeyGiven = errors.New("a private key was given where only a certificate belongs")

// KeyPair is a private key with its certificate, as in server.pem or
// client.pem. PEM is the input as given, which is what gets written: Ganeti
// found that re-encoding changes the bytes between OpenSSL versions.
type KeyPair struct {
	Key  crypto.Signer
	Cert *x509.Certificate
	PEM  []byte
}

// ParseKeyPair parses PEM data holding exactly one unencrypted private key
// (PKCS#1, SEC1 or PKCS#8; RSA, ECDSA or Ed25519) and one or more
// certificates, the first being the key's own. Blocks may come in any order
// and text between them is ignored, as OpenSSL does.
func ParseKeyPair(pemData []byte) (*KeyPair, error) {
	blocks, err := decodeAll(pemData)
	if err != nil {
		return nil, err
	}
	var kp KeyPair
	keyBlock := 0
	for i, b := range blocks {
		n := i + 1
		switch {
		case b.Type == "CERTIFICATE":
			c, err := parseCert(n, b)
			if err != nil {
				return nil, err
			}
			if kp.Cert == nil {
				kp.Cert = c
			}
		case isPrivateKey(b):
			if keyBlock != 0 {
				return nil, fmt.Errorf("more than one private key (blocks %d and %d)", keyBlock, n)
			}
			keyBlock = n
			if kp.Key, err = parseKey(n, b); err != nil {
				return nil, err
			}
		case b.Type == "EC PARAMETERS":
			// openssl ecparam -genkey writes the curve before the key.
		default:
			return nil, fmt.Errorf("block %d (%s) is neither a certificate nor a private key", n, b.Type)
		}
	}
	switch {
	case kp.Cert == nil:
		return nil, errors.New("no certificate")
	case kp.Key == nil:
		return nil, errors.New("no private key")
	case !SamePublicKey(kp.Key.Public(), kp.Cert.PublicKey):
		// Ganeti: "Certificate is not signed with given key".
		return nil, errors.New("the certificate does not match the private key")
	}
	kp.PEM = bytes.Clone(pemData)
	return &kp, nil
}

// ParseCertificateOnly parses PEM data holding exactly one certificate and
// nothing else. Any private key, even a malformed one, gives
// ErrPrivateKeyGiven, checked before anything else.
func ParseCertificateOnly(pemData []byte) (*x509.Certificate, error) {
	if bytes.Contains(pemData, []byte("PRIVATE KEY-----")) {
		return nil, ErrPrivateKeyGiven
	}
	blocks, err := decodeAll(pemData)
	if err != nil {
		return nil, err
	}
	var cert *x509.Certificate
	for i, b := range blocks {
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("block %d (%s) is not a certificate", i+1, b.Type)
		}
		if cert != nil {
			return nil, fmt.Errorf("block %d: more than one certificate", i+1)
		}
		if cert, err = parseCert(i+1, b); err != nil {
			return nil, err
		}
	}
	return cert, nil
}

// SamePublicKey says whether a and b are the same public key. Ganeti calls
// two certificates the same cluster's when their keys are equal, whatever
// else differs (a renewed certificate).
func SamePublicKey(a, b crypto.PublicKey) bool {
	ak, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && b != nil && ak.Equal(b)
}

// decodeAll returns every PEM block, refusing input with none and input
// where a BEGIN line starts a block that does not decode (pem.Decode would
// skip it silently, and a truncated key would then show up as "no private
// key").
func decodeAll(data []byte) ([]*pem.Block, error) {
	var blocks []*pem.Block
	rest := data
	for {
		b, r := pem.Decode(rest)
		if b == nil {
			break
		}
		blocks = append(blocks, b)
		rest = r
	}
	if bytes.Contains(rest, []byte("-----BEGIN")) {
		return nil, fmt.Errorf("block %d is not well-formed PEM (bad base64, headers or END line)", len(blocks)+1)
	}
	if len(blocks) == 0 {
		return nil, errors.New("no PEM data")
	}
	return blocks, nil
}

func isPrivateKey(b *pem.Block) bool {
	return strings.HasSuffix(b.Type, "PRIVATE KEY")
}

// parseCert includes x509's reason: a certificate is public, and its errors
// name fields, not bytes.
func parseCert(n int, b *pem.Block) (*x509.Certificate, error) {
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("block %d (CERTIFICATE) does not parse: %w", n, err)
	}
	return c, nil
}

// parseKey does not wrap x509's errors, which could be about key bytes.
func parseKey(n int, b *pem.Block) (crypto.Signer, error) {
	if b.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED") {
		return nil, fmt.Errorf("block %d (%s) is passphrase-protected; give the key unencrypted", n, b.Type)
	}
	var key any
	var err error
	switch b.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(b.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("block %d (%s) is not a PKCS#1, SEC1 or PKCS#8 private key", n, b.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("block %d (%s) does not parse", n, b.Type)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
		return k.(crypto.Signer), nil
	}
	return nil, fmt.Errorf("block %d (%s) holds a key that is not RSA, ECDSA or Ed25519", n, b.Type)
}
