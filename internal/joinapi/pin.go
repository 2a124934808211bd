package joinapi

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

const pinPrefix = "sha256:"

// Pin is the RFC 7469 pin of cert's public key, as kubeadm's
// --discovery-token-ca-cert-hash: "sha256:" and the hex SHA-256 of the
// DER SubjectPublicKeyInfo. It names the key, so a certificate renewed
// on the same key keeps its pin.
func Pin(cert *x509.Certificate) string {
	h := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return pinPrefix + hex.EncodeToString(h[:])
}

// ParsePin accepts "sha256:<64 hex digits>" (any case) and returns it in
// lower case.
func ParsePin(p string) (string, error) {
	h, ok := strings.CutPrefix(p, pinPrefix)
	if !ok {
		return "", fmt.Errorf("pin: %q does not start with %q", clip(p), pinPrefix)
	}
	if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("pin: %q is not 64 hex digits after %q", clip(p), pinPrefix)
	}
	return pinPrefix + strings.ToLower(h), nil
}

// ErrPin is the refusal of a server whose certificate matches no pin.
var ErrPin = errors.New("the server's certificate matches no pin")

// VerifyPins checks a TLS server by its pins: one certificate of the chain
// it presents must have a pinned public key, and the server's certificate
// must verify against that one as the only root, at the current time.
// The name in the certificate is not checked: every node of the cluster
// holds the cluster certificate, whose name is the cluster's.
func VerifyPins(pins []string, cs tls.ConnectionState, now time.Time) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the server presented no certificate")
	}
	for _, c := range cs.PeerCertificates {
		if !slices.Contains(pins, Pin(c)) {
			continue
		}
		roots := x509.NewCertPool()
		roots.AddCert(c)
		inter := x509.NewCertPool()
		for _, i := range cs.PeerCertificates[1:] {
			inter.AddCert(i)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
			CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if err != nil {
			return fmt.Errorf("the server's certificate does not verify against its pinned %s: %w", Pin(c), err)
		}
		return nil
	}
	return fmt.Errorf("%w: it presents %s", ErrPin, Pin(cs.PeerCertificates[0]))
}

// ClientTLSConfig trusts a server by pins only (VerifyPins).
// VerifyConnection also runs on resumed sessions.
func ClientTLSConfig(pins []string) *tls.Config {
	pins = slices.Clone(pins)
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, //nolint:gosec // VerifyConnection checks the pins
		VerifyConnection: func(cs tls.ConnectionState) error {
			return VerifyPins(pins, cs, time.Now())
		},
	}
}
