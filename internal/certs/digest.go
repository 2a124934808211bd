package certs

import (
	"crypto/sha1" //nolint:gosec // Ganeti's certificate digest is SHA-1; it names a certificate, it signs nothing
	"crypto/x509"
	"fmt"
	"strings"
)

// Digest is Ganeti's digest of a certificate, the form
// ssconf_master_candidates_certs lists: the SHA-1 of its DER in upper-case
// colon hex (utils.GetCertificateDigest, pyOpenSSL's X509.digest("sha1");
// openssl x509 -fingerprint -sha1 prints the same). Ganeti's noded trusts a
// client by this digest, not by a name in its certificate.
func Digest(cert *x509.Certificate) string {
	sum := sha1.Sum(cert.Raw) //nolint:gosec // see the import
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}
