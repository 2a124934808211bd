package sshkeys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// Test keys are generated once per run; RSA generation is slow.
var (
	keyMu    sync.Mutex
	keyCache = map[string]crypto.Signer{}
)

// testKey returns a key of kind and bits; name tells apart keys that must
// differ (the "other" key of a mismatched pair).
func testKey(t testing.TB, kind Kind, bits int, name string) crypto.Signer {
	t.Helper()
	keyMu.Lock()
	defer keyMu.Unlock()
	id := string(kind) + "/" + name + "/" + string(rune('0'+bits%10)) + strings.Repeat("x", bits/100)
	if k, ok := keyCache[id]; ok {
		return k
	}
	var k crypto.Signer
	var err error
	switch kind {
	case RSA:
		k, err = rsa.GenerateKey(rand.Reader, bits)
	case ECDSA:
		c := map[int]elliptic.Curve{256: elliptic.P256(), 384: elliptic.P384(), 521: elliptic.P521()}[bits]
		k, err = ecdsa.GenerateKey(c, rand.Reader)
	case Ed25519:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	keyCache[id] = k
	return k
}

// encode writes a private key in one of the PEM formats ParsePair takes.
func encode(t testing.TB, k crypto.Signer, format string) string {
	t.Helper()
	var b *pem.Block
	var err error
	switch format {
	case "openssh":
		b, err = ssh.MarshalPrivateKey(k, "test")
	case "pkcs1":
		b = &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k.(*rsa.PrivateKey))}
	case "sec1":
		var der []byte
		der, err = x509.MarshalECPrivateKey(k.(*ecdsa.PrivateKey))
		b = &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
	case "pkcs8":
		var der []byte
		der, err = x509.MarshalPKCS8PrivateKey(k)
		b = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	default:
		t.Fatalf("unknown format %q", format)
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(b))
}

func pubLine(t testing.TB, k crypto.Signer, comment string) string {
	t.Helper()
	p, err := ssh.NewPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(p)), "\n") + " " + comment + "\n"
}

func sshPub(t testing.TB, k crypto.Signer) ssh.PublicKey {
	t.Helper()
	p, err := ssh.NewPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (Debian: openssh-client); skipping the cross-check", name)
	}
	return p
}

// leaks says which line of the inputs err repeats, if any. Short lines and
// bare key type names are skipped: our own texts may name a type, and a
// short line is a substring of anything.
func leaks(err error, inputs ...string) string {
	msg := err.Error()
	if strings.Contains(msg, "PRIVATE KEY") {
		return "PRIVATE KEY"
	}
	for _, in := range inputs {
		for l := range strings.SplitSeq(in, "\n") {
			l = strings.TrimSpace(l)
			if len(l) < 16 || keyTypes[l] || !strings.Contains(msg, l) {
				continue
			}
			return l
		}
	}
	return ""
}
