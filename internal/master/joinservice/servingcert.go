package joinservice

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
)

// servingCert is the certificate join-service presents: the master's
// server.pem as its file is now, read again when the file changes (a
// rotation of the cluster certificate needs no restart). During the
// rotation's window it presents the renewal proof, a certificate of the
// new key signed by the previous one, followed by the previous
// certificate: a token that pins the new key finds it in the proof, and a
// token made before the rotation, which pins the previous key, finds that
// one, which the proof verifies against (joinapi.VerifyPins). (The new,
// self-signed certificate cannot lead such a chain: it has the proof's
// subject and key, and chain building never takes a certificate twice.)
// From the window's end on only the new certificate is presented, and the
// old pin is refused.
type servingCert struct {
	c *cluster.Cluster

	mu      sync.Mutex
	stamp   [2]fileStamp // server.pem, the renewal state
	server  *certs.KeyPair
	window  *certs.Window
	plain   *tls.Certificate
	chained *tls.Certificate
}

type fileStamp struct {
	mod  time.Time
	size int64
	ok   bool
}

func stampOf(p string) fileStamp {
	fi, err := os.Stat(p)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size(), ok: true}
}

func newServingCert(c *cluster.Cluster) *servingCert {
	return &servingCert{c: c, server: c.Server}
}

// current returns the key pair and the certificate to present at now.
func (s *servingCert) current(now time.Time) (*certs.KeyPair, *tls.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.c.Config
	stamp := [2]fileStamp{stampOf(s.c.Path(nodeconf.ServerPEM)), stampOf(cfg.Path(filepath.Join(cfg.StateDir, cluster.RenewalFile)))}
	if s.plain == nil || stamp != s.stamp {
		s.stamp = stamp
		if b, err := os.ReadFile(s.c.Path(nodeconf.ServerPEM)); err == nil {
			if kp, err := certs.ParseKeyPair(b); err == nil {
				s.server = kp // else the last good one
			}
		}
		s.window = s.c.CertificateWindow(s.server.Cert, now)
		s.plain = &tls.Certificate{Certificate: [][]byte{s.server.Cert.Raw}, PrivateKey: s.server.Key, Leaf: s.server.Cert}
		s.chained = nil
		if s.window != nil {
			s.chained = &tls.Certificate{Certificate: [][]byte{s.window.Proof.Raw, s.window.Previous.Raw},
				PrivateKey: s.server.Key, Leaf: s.window.Proof}
		}
	}
	if s.chained != nil && s.window.Open(now) {
		return s.server, s.chained
	}
	return s.server, s.plain
}

func (s *servingCert) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	_, cert := s.current(time.Now())
	if cert == nil {
		return nil, fmt.Errorf("no cluster certificate")
	}
	return cert, nil
}
