package certs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func openssl(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil { //nolint:forbidigo // test fixture
		t.Fatal(err)
	}
}

// TestOpenSSLInterop checks that OpenSSL reads what we write, and that we
// read what OpenSSL writes: an RSA cluster key in PKCS#1, as older Ganeti
// clusters have, signs client certificates that openssl verify accepts.
func TestOpenSSLInterop(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed (Debian: openssl); skipping the cross-check")
	}
	dir := t.TempDir()
	c1 := cluster(t, "c1.example.org")
	write(t, filepath.Join(dir, "server.pem"), c1.PEM)
	write(t, filepath.Join(dir, "client.pem"), client(t, c1, "node1.example.org", 24*time.Hour))

	got := openssl(t, dir, "x509", "-noout", "-subject", "-issuer", "-in", "server.pem")
	if want := "subject=CN = c1.example.org\nissuer=CN = c1.example.org\n"; got != want {
		t.Errorf("server.pem: openssl says %q, want %q", got, want)
	}
	got = openssl(t, dir, "x509", "-noout", "-subject", "-issuer", "-in", "client.pem")
	if want := "subject=CN = node1.example.org\nissuer=CN = c1.example.org\n"; got != want {
		t.Errorf("client.pem: openssl says %q, want %q", got, want)
	}
	if got := openssl(t, dir, "verify", "-CAfile", "server.pem", "client.pem"); got != "client.pem: OK\n" {
		t.Errorf("openssl verify: %q", got)
	}
	// openssl prints the same SHA-256 in upper-case hex with colons.
	got = openssl(t, dir, "x509", "-noout", "-fingerprint", "-sha256", "-in", "server.pem")
	hex := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(got[strings.Index(got, "=")+1:]), ":", ""))
	if Fingerprint(c1.Cert) != "SHA256:"+hex {
		t.Errorf("Fingerprint = %s, openssl says %s", Fingerprint(c1.Cert), got)
	}

	// A cluster certificate made by OpenSSL, key in PKCS#1.
	openssl(t, dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "k8.pem", "-out", "c.pem",
		"-subj", "/CN=ganeti.example.com", "-days", "30")
	openssl(t, dir, "rsa", "-in", "k8.pem", "-traditional", "-out", "k1.pem")
	for _, keyFile := range []string{"k8.pem", "k1.pem"} {
		key, _ := os.ReadFile(filepath.Join(dir, keyFile))
		cert, _ := os.ReadFile(filepath.Join(dir, "c.pem"))
		rsaCluster, err := ParseKeyPair(append(key, cert...))
		if err != nil {
			t.Fatalf("%s + c.pem from openssl: %v", keyFile, err)
		}
		cp := client(t, rsaCluster, "node2", 365*24*time.Hour)
		write(t, filepath.Join(dir, "client2.pem"), cp)
		if got := openssl(t, dir, "verify", "-CAfile", "c.pem", "client2.pem"); got != "client2.pem: OK\n" {
			t.Errorf("%s: openssl verify: %q", keyFile, got)
		}
		if err := CheckClientCertificate(cp, rsaCluster, "node2", GanetiClientKey, time.Now()); err != nil {
			t.Errorf("%s: %v", keyFile, err)
		}
	}
}
