package certs

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Digest is what openssl prints as the SHA-1 fingerprint, which is what
// Ganeti's X509.digest("sha1") returns.
func TestDigestMatchesOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed (Debian: openssl); skipping the cross-check")
	}
	dir := t.TempDir()
	c1 := cluster(t, "c1.example.org")
	pemData := client(t, c1, "node1.example.org", time.Hour)
	write(t, filepath.Join(dir, "client.pem"), pemData)
	kp, err := ParseKeyPair(pemData)
	if err != nil {
		t.Fatal(err)
	}
	out := openssl(t, dir, "x509", "-noout", "-fingerprint", "-sha1", "-in", "client.pem")
	_, want, _ := strings.Cut(strings.TrimSpace(out), "Fingerprint=") // "sha1 Fingerprint=" in OpenSSL 3, "SHA1 …" before
	if got := Digest(kp.Cert); got != want || len(got) != 59 {
		t.Errorf("Digest = %q, openssl says %q", got, want)
	}
}
