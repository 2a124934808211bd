package certs

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// A rotation of the cluster certificate (cluster-renew) makes a new key
// and certificate and a renewal proof: a certificate of the new key for
// the cluster name, signed by the old cluster key. It is what lets a node
// that holds the old key take the new one (a node refuses any other key:
// nodestate.CheckCertificate), and, during the rotation's window, the
// link that makes a chain of the new certificate verify against the old
// one (join-service's pins, node daemons not renewed yet).

// NewRenewedClusterCertificate makes the new cluster certificate of a
// rotation, as NewClusterCertificate does, with a random serialNumber
// attribute in its subject besides cn: the old and the new certificate
// then have different subjects, which a TLS server's list of acceptable
// client CAs tells apart (the master picks its old or new client
// certificate by it during the window).
func NewRenewedClusterCertificate(cn string, validity time.Duration) ([]byte, error) {
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	return newClusterCertificate(cn, validity, pkix.Name{CommonName: cn, SerialNumber: hex.EncodeToString(id)})
}

// NewRenewalProof signs, with the old cluster key, a certificate of the
// new cluster certificate's key and subject (its common name the cluster
// name) that may sign certificates, valid until notAfter (the window's
// end). It returns the proof in PEM.
func NewRenewalProof(old *KeyPair, renewed *x509.Certificate, notAfter time.Time) ([]byte, error) {
	alg, err := sha256Algorithm(old.Key)
	if err != nil {
		return nil, err
	}
	tmpl, err := template(renewed.Subject.CommonName, time.Until(notAfter))
	if err != nil {
		return nil, err
	}
	tmpl.Subject = renewed.Subject
	tmpl.SubjectKeyId = renewed.SubjectKeyId
	tmpl.NotAfter = notAfter
	tmpl.SignatureAlgorithm = alg
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, old.Cert, renewed.PublicKey, old.Key)
	if err != nil {
		return nil, fmt.Errorf("signing the renewal proof: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// VerifyRenewalProof checks that proof is a renewal proof for renewed in
// the cluster clusterName made with old's key: a CA certificate of
// renewed's public key whose common name is clusterName, signed by old's
// key. Its dates are not checked, so that a node that was down during the
// window still takes the new certificate when the master next joins it;
// the proof proves nothing to anyone who does not hold the old key.
func VerifyRenewalProof(old, renewed, proof *x509.Certificate, clusterName string) error {
	switch {
	case !proof.BasicConstraintsValid || !proof.IsCA:
		return errors.New("the renewal proof is not a certificate that may sign (a client certificate is no proof)")
	case proof.Subject.CommonName != clusterName:
		return fmt.Errorf("the renewal proof is for the cluster %q, not %q", proof.Subject.CommonName, clusterName)
	case !SamePublicKey(proof.PublicKey, renewed.PublicKey):
		return errors.New("the renewal proof is for another key than the new certificate's")
	}
	if err := old.CheckSignature(proof.SignatureAlgorithm, proof.RawTBSCertificate, proof.Signature); err != nil {
		return fmt.Errorf("the renewal proof is not signed by the previous cluster key: %w", err)
	}
	return nil
}

// Window is what a rotation of the cluster certificate adds to the trust
// of a TLS side until Until: the previous cluster certificate and the
// renewal proof of the current one.
type Window struct {
	Previous *x509.Certificate
	Proof    *x509.Certificate
	Until    time.Time
}

// Open says whether w adds anything at now.
func (w *Window) Open(now time.Time) bool {
	return w != nil && w.Previous != nil && now.Before(w.Until)
}
