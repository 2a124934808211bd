package sshkeys

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestGenerate(t *testing.T) {
	tests := []struct {
		kind     Kind
		bits     int
		comment  string
		wantBits int
		wantType string
	}{
		{RSA, 0, "root@node1", 2048, "ssh-rsa"},
		{RSA, 3072, "", 3072, "ssh-rsa"},
		{ECDSA, 0, "c", 256, "ecdsa-sha2-nistp256"},
		{ECDSA, 384, "c", 384, "ecdsa-sha2-nistp384"},
		{ECDSA, 521, "c", 521, "ecdsa-sha2-nistp521"},
		{Ed25519, 0, "c d", 256, "ssh-ed25519"},
		{Ed25519, 256, "", 256, "ssh-ed25519"},
		{DSA, 0, "c", 1024, "ssh-dss"},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind)+"-"+strconv.Itoa(tt.bits), func(t *testing.T) {
			priv, pub, err := Generate(tt.kind, tt.bits, tt.comment)
			if err != nil {
				t.Fatal(err)
			}
			header := "-----BEGIN OPENSSH PRIVATE KEY-----\n"
			if tt.kind == DSA {
				header = "-----BEGIN DSA PRIVATE KEY-----\n"
			}
			if !bytes.HasPrefix(priv, []byte(header)) {
				t.Errorf("private key does not start with %q: %.40q", header, priv)
			}
			re := "^" + regexp.QuoteMeta(tt.wantType) + " [A-Za-z0-9+/]+=*" + regexp.QuoteMeta(map[bool]string{true: " " + tt.comment, false: ""}[tt.comment != ""]) + "\n$"
			if !regexp.MustCompile(re).Match(pub) {
				t.Errorf("public line %q does not match %s", pub, re)
			}
			p, err := ParsePair(tt.kind, string(priv), string(pub))
			if err != nil {
				t.Fatal(err)
			}
			if p.Bits != tt.wantBits {
				t.Errorf("bits = %d, want %d", p.Bits, tt.wantBits)
			}
		})
	}
}

func TestGenerateRefuses(t *testing.T) {
	tests := []struct {
		kind    Kind
		bits    int
		comment string
		wantErr string
	}{
		{RSA, 1024, "", "rsa keys must have 2048 to 16384 bits, not 1024"},
		{ECDSA, 512, "", "ecdsa keys must have 256, 384 or 521 bits, not 512"},
		{Ed25519, 255, "", "ed25519 keys must have 256 bits, not 255"},
		{DSA, 2048, "", "dsa keys must have 1024 bits, not 2048"},
		{"x", 0, "", `unknown key kind "x" (want rsa, dsa, ecdsa or ed25519)`},
		{Ed25519, 0, "a\nb", "the key comment must be one line"},
	}
	for _, tt := range tests {
		_, _, err := Generate(tt.kind, tt.bits, tt.comment)
		if errText(err) != tt.wantErr {
			t.Errorf("Generate(%q, %d, %q) error = %v, want %q", tt.kind, tt.bits, tt.comment, err, tt.wantErr)
		}
	}
}

// TestGenerateAgainstSSHKeygen checks that ssh-keygen reads our private keys
// (-y derives the same public key) and fingerprints them as we do (-l).
func TestGenerateAgainstSSHKeygen(t *testing.T) {
	keygen := needTool(t, "ssh-keygen")
	dir := t.TempDir()
	for _, kind := range []Kind{RSA, ECDSA, Ed25519, DSA} {
		if kind == DSA && !opensshHasDSA() {
			t.Log("skipping dsa: this OpenSSH has no DSA keys (9.8 removed them)")
			continue
		}
		priv, pub, err := Generate(kind, 0, "gen@test")
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "id_"+string(kind))
		if err := os.WriteFile(path, priv, 0o600); err != nil { //nolint:forbidigo // test fixture
			t.Fatal(err)
		}
		if err := os.WriteFile(path+".pub", pub, 0o644); err != nil { //nolint:forbidigo // test fixture
			t.Fatal(err)
		}
		out, err := exec.Command(keygen, "-y", "-f", path).Output()
		if err != nil {
			t.Fatalf("ssh-keygen -y -f id_%s: %v", kind, err)
		}
		got, err := ParsePublicLine(string(out))
		if err != nil {
			t.Fatalf("ssh-keygen -y output: %v", err)
		}
		want, _ := ParsePublicLine(string(pub))
		if !bytes.Equal(got.Marshal(), want.Marshal()) {
			t.Errorf("%s: ssh-keygen -y derives another public key", kind)
		}
		out, err = exec.Command(keygen, "-lf", path+".pub").Output()
		if err != nil {
			t.Fatalf("ssh-keygen -lf: %v", err)
		}
		f := strings.Fields(string(out))
		if f[1] != Fingerprint(want) || f[0] != strconv.Itoa(Bits(want)) {
			t.Errorf("%s: ssh-keygen -lf says %s %s; we say %d %s", kind, f[0], f[1], Bits(want), Fingerprint(want))
		}
	}
}

// opensshHasDSA says whether this machine's OpenSSH still has DSA keys.
func opensshHasDSA() bool {
	out, err := exec.Command("ssh", "-Q", "key").Output()
	return err == nil && slices.Contains(strings.Fields(string(out)), "ssh-dss")
}

// TestFingerprintVectors compares with what ssh-keygen -lf printed once for
// the test keys in testdata/, so this holds without ssh-keygen too.
func TestFingerprintVectors(t *testing.T) {
	for _, name := range []string{"rsa_pem", "ed25519_encrypted", "ecdsa384", "dsa_openssh", "dsa_pem"} {
		pub, err := ParsePublicLine(readTestdata(t, name+".pub"))
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(readTestdata(t, name+".fp"))
		if got := strconv.Itoa(Bits(pub)) + " " + Fingerprint(pub); got != f[0]+" "+f[1] {
			t.Errorf("%s: got %s, ssh-keygen -lf said %s %s", name, got, f[0], f[1])
		}
	}
}
