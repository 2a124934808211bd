package nodestate

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"slices"
	"strings"

	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/daemon"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
)

// DSARefusal asks the node's OpenSSH for its key types (ssh -Q key, or
// node.json's ssh_query_key_command) and says why DSA keys cannot be used
// on it, or "" if ssh-dss is among them.
func DSARefusal(cfg *nodeconf.Config) string {
	out, err := daemon.Output(context.Background(), slog.New(slog.DiscardHandler), cfg.SSHQueryKeyCommand)
	if err != nil {
		return "dsa keys need an OpenSSH that supports them, and asking this node's failed: " + err.Error()
	}
	if slices.Contains(strings.Fields(string(out)), "ssh-dss") {
		return ""
	}
	return "dsa keys are not supported by this node's OpenSSH (" + cfg.SSHQueryKeyCommand.String() + " lists no ssh-dss)"
}

// CheckCertificateOnly checks a cluster certificate sent without its key
// (prepare-node-join, ssh-update: Ganeti's _VerifyCertificateSoft): no
// private key in it, and the key of the node's server.pem if it has one
// or a renewal proved by it (CheckCertificate).
func CheckCertificateOnly(cfg *nodeconf.Config, where, pemText, clusterName string, renewal *joindoc.CertificateRenewal) (*x509.Certificate, error) {
	cert, err := certs.ParseCertificateOnly([]byte(pemText))
	if errors.Is(err, certs.ErrPrivateKeyGiven) {
		return nil, problem.Reject(where, "a private key was given; only the cluster certificate belongs here").
			WithHint("node-daemon-setup takes the certificate with its key")
	}
	if err != nil {
		return nil, problem.Reject(where, "%v", err)
	}
	return cert, CheckCertificate(cfg, where, cert, clusterName, renewal)
}

// CheckServerPEM checks a cluster certificate sent with its key
// (node-daemon-setup, ssl-update: server.pem): both parse and match each
// other, and the key is the node's own or a renewal proved by it
// (CheckCertificate).
func CheckServerPEM(cfg *nodeconf.Config, where, pemText, clusterName string, renewal *joindoc.CertificateRenewal) (*certs.KeyPair, error) {
	kp, err := certs.ParseKeyPair([]byte(pemText))
	if err != nil {
		return nil, problem.Reject(where, "%v", err)
	}
	return kp, CheckCertificate(cfg, where, kp.Cert, clusterName, renewal)
}
