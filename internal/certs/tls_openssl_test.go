package certs

import (
	"crypto/tls"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCipherSuitesWithOpenSSL asks a node daemon's TLS configuration with
// the real openssl s_client for each suite: the CBC suites (SHA-1 and
// SHA-256 MACs) and the static-RSA ones are refused, the AEAD ECDHE suites
// and TLS 1.3 are accepted, for an ECDSA and an RSA cluster key.
func TestCipherSuitesWithOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed (Debian: openssl); skipping the cross-check")
	}
	rsaCluster, err := ParseKeyPair([]byte(keyPEM(t, rsaKey(), "pkcs1") + selfSigned(t, rsaKey(), "c1.example.org")))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		server   *KeyPair
		accepted []string // OpenSSL's names, TLS 1.2
		refused  []string
	}{
		{"ecdsa", cluster(t, "c1.example.org"),
			[]string{"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"},
			[]string{"ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA256"}},
		{"rsa", rsaCluster,
			[]string{"ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"},
			[]string{"ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA", "ECDHE-RSA-AES128-SHA256", "AES128-SHA", "AES128-GCM-SHA256", "DES-CBC3-SHA"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "client.pem"), client(t, tc.server, "master.c1.example.org", time.Hour))
			addr := serveTLS(t, ServerTLSConfig(tc.server))
			sClient := func(args ...string) (string, error) {
				args = append([]string{"s_client", "-connect", addr, "-brief", "-cert", "client.pem", "-key", "client.pem"}, args...)
				cmd := exec.Command("openssl", args...)
				cmd.Dir = dir
				out, err := cmd.CombinedOutput() // stdin is /dev/null: it ends after the handshake
				return string(out), err
			}
			for _, c := range tc.accepted {
				out, err := sClient("-tls1_2", "-cipher", c)
				if err != nil || !strings.Contains(out, "Ciphersuite: "+c+"\n") {
					t.Errorf("TLS 1.2 %s refused: %v\n%s", c, err, out)
				}
			}
			for _, c := range tc.refused {
				if out, err := sClient("-tls1_2", "-cipher", c); err == nil || strings.Contains(out, "Ciphersuite:") {
					t.Errorf("TLS 1.2 %s accepted:\n%s", c, out)
				}
			}
			if out, err := sClient("-tls1_3"); err != nil || !strings.Contains(out, "Protocol version: TLSv1.3\n") {
				t.Errorf("TLS 1.3 refused: %v\n%s", err, out)
			}
			for _, old := range []string{"-tls1", "-tls1_1"} {
				if out, err := sClient(old, "-cipher", "DEFAULT:@SECLEVEL=0"); err == nil || strings.Contains(out, "Ciphersuite:") {
					t.Errorf("%s accepted:\n%s", old, out)
				}
			}
		})
	}
}

// serveTLS accepts connections on loopback and completes each handshake
// with cfg until the test ends; it returns the address.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				s := tls.Server(conn, cfg)
				if s.Handshake() == nil {
					_, _ = s.Read(make([]byte, 1)) // until the client closes
				}
			}()
		}
	}()
	return l.Addr().String()
}
