package certs

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// minRemaining is how long a client certificate must stay valid to be kept;
// Ganeti renews on demand, we renew before one can expire between runs.
const minRemaining = 30 * 24 * time.Hour

// CheckClientCertificate says whether a node's client.pem can be kept: it
// parses as a key pair, its key fits spec (so a weaker key made before is
// replaced), it is for cn, is signed by the cluster certificate's key with a
// SHA-256 algorithm, and is valid at now and for 30 more days.
func CheckClientCertificate(clientPEM []byte, server *KeyPair, cn string, spec KeySpec, now time.Time) error {
	kp, err := ParseKeyPair(clientPEM)
	if err != nil {
		return fmt.Errorf("the client certificate does not parse: %w", err)
	}
	if err := spec.Fits(kp.Key.Public()); err != nil {
		return err
	}
	c := kp.Cert
	if c.Subject.CommonName != cn {
		return fmt.Errorf("the client certificate is for %q, not %q", c.Subject.CommonName, cn)
	}
	if !bytes.Equal(c.RawIssuer, server.Cert.RawSubject) {
		return errors.New("the client certificate's issuer is not the cluster certificate's subject")
	}
	if err := c.CheckSignatureFrom(server.Cert); err != nil {
		return fmt.Errorf("the client certificate is not signed by the cluster certificate: %w", err)
	}
	switch c.SignatureAlgorithm {
	case x509.SHA256WithRSA, x509.ECDSAWithSHA256, x509.SHA256WithRSAPSS:
	default:
		return fmt.Errorf("the client certificate is signed with %s, not with SHA-256", c.SignatureAlgorithm)
	}
	const day = "2006-01-02 15:04:05Z"
	switch {
	case now.Before(c.NotBefore):
		return fmt.Errorf("the client certificate is not valid before %s", c.NotBefore.UTC().Format(day))
	case !now.Before(c.NotAfter):
		return fmt.Errorf("the client certificate expired at %s", c.NotAfter.UTC().Format(day))
	case c.NotAfter.Before(now.Add(minRemaining)):
		return fmt.Errorf("the client certificate expires at %s, in less than 30 days", c.NotAfter.UTC().Format(day))
	}
	return nil
}
