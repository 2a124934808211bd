// Package nodestate reads what a node already has of a cluster, its cluster
// name and its node daemon certificate, for the checks that keep a node from
// being taken over by another cluster by mistake.
package nodestate

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"syscall"

	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
	"github.com/nodejoin/nodejoin/internal/ssconf"
	"github.com/nodejoin/nodejoin/internal/txn"
)

// hintLeave is given when a node belongs to another cluster: how it
// leaves that one first (node-cleanup(8), node-remove(8)).
func hintLeave(cluster string) string {
	if cluster == "" {
		cluster = "CLUSTER"
	}
	return fmt.Sprintf(`if this node is moving to another cluster, take it out of %s first: node-remove NODE on that cluster's master, or on this node: echo '{"cluster_name": "%s"}' | node-cleanup`, cluster, cluster)
}

// CheckClusterName refuses name unless the node has no cluster name yet or
// the same one (Ganeti's ssconf.VerifyClusterName).
func CheckClusterName(cfg *nodeconf.Config, name string) error {
	p := ssconf.Path(cfg.DataDir, "cluster_name")
	real, err := txn.Resolve(cfg.Root, p)
	if err != nil {
		return err
	}
	local, err := ssconf.Read(real)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // a fresh node
	}
	if err != nil {
		return fmt.Errorf("reading this node's cluster name: %w", err)
	}
	if local != name {
		return problem.Reject("/cluster_name", "%q does not match this node's cluster %q (%s)", name, local, p).
			WithHint(hintLeave(local))
	}
	return nil
}

// ReadFile reads the node file np as the plan sees the node: its
// directories resolved inside the root like the transaction's targets
// (txn.Resolve), a path that leads out of it refused, and the file itself
// not followed if it is a symbolic link.
func ReadFile(cfg *nodeconf.Config, np string) ([]byte, error) {
	real, err := txn.Resolve(cfg.Root, np)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(real, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s: %w", np, txn.ErrNotRegular)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w", np, txn.ErrNotRegular)
	}
	return io.ReadAll(f)
}

// LocalKeyPair returns the node's server.pem, or nil if it has none.
func LocalKeyPair(cfg *nodeconf.Config) (*certs.KeyPair, error) {
	p := path.Join(cfg.DataDir, nodeconf.ServerPEM)
	data, err := ReadFile(cfg, p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	kp, err := certs.ParseKeyPair(data)
	if err != nil {
		return nil, fmt.Errorf("this node's %s: %w", p, err)
	}
	return kp, nil
}

// CheckCertificate refuses a cluster certificate whose public key is not
// the key of the node's own server.pem (Ganeti's CheckNodeCertificate: the
// same key, whatever the certificate's dates or encoding), unless renewal
// proves the new key with that one (a rotation: cluster-renew). A node
// without server.pem passes. A renewal given is checked in any case, so
// that a bad one is refused on every node, and its previous certificate
// must have the node's key when the node has one. clusterName is the
// document's (checked against the node's by CheckClusterName), which the
// proof must name.
func CheckCertificate(cfg *nodeconf.Config, where string, cert *x509.Certificate, clusterName string, renewal *joindoc.CertificateRenewal) error {
	local, err := LocalKeyPair(cfg)
	if err != nil {
		return err
	}
	var previous *x509.Certificate
	if renewal != nil {
		if previous, err = CheckRenewal(cert, clusterName, renewal); err != nil {
			return err
		}
	}
	if local == nil {
		return nil
	}
	serverPEM := path.Join(cfg.DataDir, nodeconf.ServerPEM)
	if previous != nil && !certs.SamePublicKey(previous.PublicKey, local.Key.Public()) &&
		!certs.SamePublicKey(cert.PublicKey, local.Key.Public()) {
		return problem.Reject(renewalWhere+"/previous_certificate", "the certificate renewed is not this node's: its key is not the one in %s", serverPEM).
			WithHint(hintLeave(""))
	}
	if !certs.SamePublicKey(cert.PublicKey, local.Key.Public()) && previous == nil {
		return problem.Reject(where, "the certificate does not match this node's key in %s", serverPEM).
			WithHint(hintLeave(""))
	}
	return nil
}

// renewalWhere is where a document has its renewal (schemas'
// certificateRenewal).
const renewalWhere = "/cluster_certificate_renewal"

// CheckRenewal checks a renewal against the new certificate cert and
// returns the previous certificate: the proof must be made by the
// previous certificate's key for cert's key and clusterName.
func CheckRenewal(cert *x509.Certificate, clusterName string, renewal *joindoc.CertificateRenewal) (*x509.Certificate, error) {
	previous, err := certs.ParseCertificateOnly([]byte(renewal.PreviousCertificate))
	if err != nil {
		return nil, problem.Reject(renewalWhere+"/previous_certificate", "%v", err)
	}
	proof, err := certs.ParseCertificateOnly([]byte(renewal.Proof))
	if err != nil {
		return nil, problem.Reject(renewalWhere+"/proof", "%v", err)
	}
	if err := certs.VerifyRenewalProof(previous, cert, proof, clusterName); err != nil {
		return nil, problem.Reject(renewalWhere+"/proof", "%v", err)
	}
	return previous, nil
}
