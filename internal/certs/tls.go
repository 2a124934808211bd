package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// CipherSuites are the TLS 1.2 suites both sides offer: forward secret
// (ECDHE) and authenticated encryption (AES-GCM, ChaCha20-Poly1305) only, for
// RSA and ECDSA cluster keys alike: Mozilla's "intermediate" list. Go's
// default still offers the CBC suites with SHA-1 MACs, which have no place
// here. TLS 1.3 suites are not configurable in Go and are all AEAD.
//
// TLS 1.2 stays allowed, with these suites: it costs nothing, and a Ganeti
// cluster's tools or an operator's older curl may still speak only 1.2.
var CipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// ServerTLSConfig is the TLS configuration of a node daemon: it presents the
// cluster certificate and accepts only clients whose certificate the cluster
// key signed. That proves membership of the cluster only: every node holds
// the cluster key, so who may write is decided by the client certificate's
// Digest (noded), never by a name in it.
func ServerTLSConfig(server *KeyPair) *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(server.Cert)
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: CipherSuites,
		Certificates: []tls.Certificate{{
			Certificate: [][]byte{server.Cert.Raw},
			PrivateKey:  server.Key,
			Leaf:        server.Cert,
		}},
		ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs:  roots,
	}
}

// ServerTLSConfigWindow is ServerTLSConfig that, while w is open, also
// accepts clients whose certificate the previous cluster key signed (a
// rotation's window: nodes and a master not on the new certificate yet).
// It presents the new certificate only: the master trusts both during the
// window (ClientTLSConfigAny). Each handshake asks the clock, so the old clients are refused from
// w.Until on without a restart.
func ServerTLSConfigWindow(server *KeyPair, w *Window) *tls.Config {
	cfg := ServerTLSConfig(server)
	if w == nil || w.Previous == nil {
		return cfg
	}
	both := cfg.Clone()
	both.ClientCAs = x509.NewCertPool()
	both.ClientCAs.AddCert(server.Cert)
	both.ClientCAs.AddCert(w.Previous)
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		if w.Open(time.Now()) {
			return both, nil
		}
		return nil, nil
	}
	return cfg
}

// ClientTLSConfig is the TLS configuration for calling a node daemon: it
// presents the node's client certificate and trusts a server only if its
// certificate is the cluster certificate or one it signed.
//
// Every node presents the same cluster certificate, whose name is the
// cluster's, not the node's, so the standard check (which compares the host
// name) cannot apply. InsecureSkipVerify turns that check off, and
// VerifyConnection does the real one: a chain to the cluster certificate as
// the only root, at the current time. VerifyConnection, unlike
// VerifyPeerCertificate, also runs on resumed sessions.
func ClientTLSConfig(cluster *x509.Certificate, client *KeyPair) *tls.Config {
	return ClientTLSConfigAny([]*x509.Certificate{cluster}, []*KeyPair{client})
}

// ClientTLSConfigAny is ClientTLSConfig for a rotation's window: a server
// is trusted if its certificate chains to any of clusters, and of
// clients the first whose issuer the server names among the CAs it
// accepts is presented (the first if it names none). A node daemon not on
// the new cluster certificate yet accepts only the client certificate the
// old key signed, and lists only the old certificate's subject.
func ClientTLSConfigAny(clusters []*x509.Certificate, clients []*KeyPair) *tls.Config {
	roots := x509.NewCertPool()
	for _, c := range clusters {
		roots.AddCert(c)
	}
	chains := make([]tls.Certificate, len(clients))
	for i, c := range clients {
		chains[i] = tls.Certificate{Certificate: [][]byte{c.Cert.Raw}, PrivateKey: c.Key, Leaf: c.Cert}
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		CipherSuites:       CipherSuites,
		InsecureSkipVerify: true, //nolint:gosec // VerifyConnection checks against the cluster certificate
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the node daemon presented no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
				Roots:         roots,
				Intermediates: inter,
				KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if err != nil {
				return fmt.Errorf("the node daemon's certificate is not the cluster's: %w", err)
			}
			return nil
		},
	}
	if len(chains) == 1 {
		cfg.Certificates = chains
		return cfg
	}
	cfg.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		for i, c := range clients {
			for _, ca := range cri.AcceptableCAs {
				if bytes.Equal(ca, c.Cert.RawIssuer) {
					return &chains[i], nil
				}
			}
		}
		return &chains[0], nil
	}
	return cfg
}
