package cluster

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"time"

	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/noded"
)

// BootstrapCandidate is the master_candidates_certs line that names the
// master's previous client certificate during a rotation of the cluster
// certificate: Ganeti's name for the temporary entry of renew-crypto
// (constants.CRYPTO_BOOTSTRAP). Node daemons not on the new certificate
// yet accept the master's writes only from that certificate.
const BootstrapCandidate = "bootstrap"

// certificateWindow is the rotation's certificate part while it is under
// way: the previous cluster certificate, the master's previous client
// certificate and the proof; nil when no rotation of the certificate is.
type certificateWindow struct {
	previous *x509.Certificate
	client   *certs.KeyPair
	proof    *x509.Certificate
	until    time.Time
}

func (r *Renewal) certificateWindow() (*certificateWindow, error) {
	if r == nil || !r.Certificate {
		return nil, nil
	}
	prev, err := certs.ParseCertificateOnly([]byte(r.OldCertificate))
	if err != nil {
		return nil, fmt.Errorf("the renewal state's old certificate: %w", err)
	}
	proof, err := certs.ParseCertificateOnly([]byte(r.CertificateProof))
	if err != nil {
		return nil, fmt.Errorf("the renewal state's proof: %w", err)
	}
	client, err := certs.ParseKeyPair([]byte(r.OldClient))
	if err != nil {
		return nil, fmt.Errorf("the renewal state's old client certificate: %w", err)
	}
	return &certificateWindow{previous: prev, client: client, proof: proof, until: r.WindowEnd}, nil
}

// CertificateWindow is, during a rotation of the cluster certificate whose
// window is open at now and once the master presents the new certificate
// (the proof is for current's key), what join-service adds to its chain:
// the previous certificate and the proof. nil otherwise.
func (c *Cluster) CertificateWindow(current *x509.Certificate, now time.Time) *certs.Window {
	r, err := c.Renewal()
	if err != nil {
		return nil
	}
	w, err := r.certificateWindow()
	if err != nil || w == nil || !now.Before(w.until) || !certs.SamePublicKey(w.proof.PublicKey, current.PublicKey) {
		return nil
	}
	return &certs.Window{Previous: w.previous, Proof: w.proof, Until: w.until}
}

// certificateRenewal is what the documents carry during a rotation of the
// cluster certificate once the master has the new one (serverPEM, as the
// documents send it): the previous certificate and the proof. It is sent
// after the window's end too, while the rotation waits for nodes not on
// the new certificate yet; nil when there is nothing to send.
func (c *Cluster) certificateRenewal(serverPEM []byte) (*joindoc.CertificateRenewal, error) {
	r, err := c.Renewal()
	if err != nil {
		return nil, err
	}
	if r == nil || !r.Certificate {
		return nil, nil
	}
	proof, err := certs.ParseCertificateOnly([]byte(r.CertificateProof))
	if err != nil {
		return nil, fmt.Errorf("the renewal state's proof: %w", err)
	}
	current, err := certs.ParseCertificateOnly([]byte(certificateOnly(serverPEM)))
	if err != nil {
		return nil, fmt.Errorf("the cluster certificate: %w", err)
	}
	if !certs.SamePublicKey(proof.PublicKey, current.PublicKey) {
		return nil, nil // the master has not taken the new certificate yet
	}
	return &joindoc.CertificateRenewal{PreviousCertificate: r.OldCertificate, Proof: r.CertificateProof, WindowEnd: r.WindowEnd}, nil
}

// currentPairs are the cluster certificate and the master's client
// certificate as the master's files hold them now (a rotation may have
// replaced them since Open), or as Open read them if the files cannot be
// read.
func (c *Cluster) currentPairs() (server, client *certs.KeyPair) {
	server, client = c.Server, c.Client
	if b, err := os.ReadFile(c.Path(nodeconf.ServerPEM)); err == nil {
		if kp, err := certs.ParseKeyPair(b); err == nil {
			server = kp
		}
	}
	if b, err := os.ReadFile(c.Path(nodeconf.ClientPEM)); err == nil {
		if kp, err := certs.ParseKeyPair(b); err == nil {
			client = kp
		}
	}
	return server, client
}

// currentClientCert is the master's client certificate as client.pem
// holds it now, or as Open read it: its certificate only, as the ssconf
// the master sends names it by digest (parsing the key too would double
// the cost of building a document).
func (c *Cluster) currentClientCert() *x509.Certificate {
	b, err := os.ReadFile(c.Path(nodeconf.ClientPEM))
	if err != nil {
		return c.Client.Cert
	}
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			return c.Client.Cert
		}
		if blk.Type == "CERTIFICATE" {
			if cert, err := x509.ParseCertificate(blk.Bytes); err == nil {
				return cert
			}
			return c.Client.Cert
		}
	}
}

// NodedClient is the master's client of the node daemons: it presents the
// master's client certificate and trusts the cluster certificate, as the
// master's files have them now. During a rotation of the cluster
// certificate whose window is open it also trusts node daemons on the
// previous certificate and presents the previous client certificate to
// those that accept only it; after the window only the new.
func (c *Cluster) NodedClient() *noded.Client {
	server, client := c.currentPairs()
	roots := []*x509.Certificate{server.Cert}
	clients := []*certs.KeyPair{client}
	add := func(cert *x509.Certificate, kp *certs.KeyPair) {
		for _, r := range roots {
			if bytes.Equal(r.Raw, cert.Raw) {
				return
			}
		}
		roots = append(roots, cert)
		if kp != nil {
			clients = append(clients, kp)
		}
	}
	add(c.Server.Cert, c.Client)
	if r, err := c.Renewal(); err == nil {
		if w, err := r.certificateWindow(); err == nil && w != nil && time.Now().Before(w.until) {
			add(w.previous, w.client)
		}
	}
	return noded.NewClientAny(roots, clients)
}

// bootstrapDigest is the digest of the master's previous client
// certificate while a rotation of the cluster certificate is under way
// and its window open, else "".
func (c *Cluster) bootstrapDigest(now time.Time) string {
	r, err := c.Renewal()
	if err != nil {
		return ""
	}
	w, err := r.certificateWindow()
	if err != nil || w == nil || !now.Before(w.until) {
		return ""
	}
	return certs.Digest(w.client.Cert)
}
