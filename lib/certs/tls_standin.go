package certs

// STAND-IN (branch master-side only) for ServerTLSConfig and
// ClientTLSConfig and CheckClientCertificate, which main's lib/certs does not have yet. Delete this
// file when they land.

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// ServerTLSConfig serves with server's pair and requires client
// certificates signed by it.
func ServerTLSConfig(server *KeyPair) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(server.Cert)
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{server.Cert.Raw}, PrivateKey: server.Key, Leaf: server.Cert}},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}
}

// ClientTLSConfig presents client and accepts only a server presenting
// exactly the cluster certificate (no host name check: nodes are reached
// by name or address alike).
func ClientTLSConfig(cluster *x509.Certificate, client *KeyPair) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		Certificates:       []tls.Certificate{{Certificate: [][]byte{client.Cert.Raw}, PrivateKey: client.Key, Leaf: client.Cert}},
		InsecureSkipVerify: true, //nolint:gosec // replaced by the pin in VerifyPeerCertificate
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !bytes.Equal(raw[0], cluster.Raw) {
				return errors.New("the server does not present the cluster certificate")
			}
			return nil
		},
	}
}

// CheckClientCertificate (stand-in) checks that clientPEM is a key pair
// whose certificate server signed, for cn, valid at now.
func CheckClientCertificate(clientPEM []byte, server *KeyPair, cn string, now time.Time) error {
	kp, err := ParseKeyPair(clientPEM)
	if err != nil {
		return err
	}
	if err := kp.Cert.CheckSignatureFrom(server.Cert); err != nil {
		return fmt.Errorf("not signed by the cluster certificate: %w", err)
	}
	if kp.Cert.Subject.CommonName != cn {
		return fmt.Errorf("issued to %q, not %q", kp.Cert.Subject.CommonName, cn)
	}
	if now.Before(kp.Cert.NotBefore) || now.After(kp.Cert.NotAfter) {
		return errors.New("not valid now")
	}
	return nil
}
