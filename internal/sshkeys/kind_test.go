package sshkeys

import (
	//lint:ignore SA1019 to test that DSA is recognised
	"crypto/dsa"
	"crypto/rand"
	"math/big"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestKindOfAndBits(t *testing.T) {
	p := new(big.Int).Lsh(big.NewInt(1), 1023) // a 1024-bit "prime": NewPublicKey does not check
	dsaPub, err := ssh.NewPublicKey(&dsa.PublicKey{Parameters: dsa.Parameters{P: p, Q: big.NewInt(7), G: big.NewInt(2)}, Y: big.NewInt(3)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		pub      ssh.PublicKey
		wantKind Kind
		wantBits int
	}{
		{"rsa 2048", sshPub(t, testKey(t, RSA, 2048, "a")), RSA, 2048},
		{"rsa 3072", sshPub(t, testKey(t, RSA, 3072, "a")), RSA, 3072},
		{"ecdsa 256", sshPub(t, testKey(t, ECDSA, 256, "a")), ECDSA, 256},
		{"ecdsa 384", sshPub(t, testKey(t, ECDSA, 384, "a")), ECDSA, 384},
		{"ecdsa 521", sshPub(t, testKey(t, ECDSA, 521, "a")), ECDSA, 521},
		{"ed25519", sshPub(t, testKey(t, Ed25519, 256, "a")), Ed25519, 256},
		{"dsa", dsaPub, DSA, 1024},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, err := KindOf(tt.pub)
			if err != nil || kind != tt.wantKind {
				t.Errorf("KindOf = %q, %v; want %q", kind, err, tt.wantKind)
			}
			if got := Bits(tt.pub); got != tt.wantBits {
				t.Errorf("Bits = %d, want %d", got, tt.wantBits)
			}
		})
	}
}

func TestKindOfRefuses(t *testing.T) {
	signer, err := ssh.NewSignerFromKey(testKey(t, Ed25519, 256, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	cert := &ssh.Certificate{Key: sshPub(t, testKey(t, Ed25519, 256, "a")), CertType: ssh.UserCert, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, signer); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		pub     ssh.PublicKey
		wantErr string
	}{
		{"nil", nil, "no public key"},
		{"certificate", cert, `unsupported key type "ssh-ed25519-cert-v01@openssh.com"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := KindOf(tt.pub)
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("KindOf error = %v, want %q", err, tt.wantErr)
			}
		})
	}
	if got := Bits(cert); got != 0 {
		t.Errorf("Bits(certificate) = %d, want 0", got)
	}
}

func TestCheckBits(t *testing.T) {
	tests := []struct {
		kind    Kind
		bits    int
		wantErr string
	}{
		{RSA, 2048, ""},
		{RSA, 4096, ""},
		{RSA, 16384, ""},
		{RSA, 1024, "rsa keys must have 2048 to 16384 bits, not 1024"},
		{RSA, 2047, "rsa keys must have 2048 to 16384 bits, not 2047"},
		{RSA, 16385, "rsa keys must have 2048 to 16384 bits, not 16385"},
		{ECDSA, 256, ""},
		{ECDSA, 384, ""},
		{ECDSA, 521, ""},
		{ECDSA, 512, "ecdsa keys must have 256, 384 or 521 bits, not 512"},
		{ECDSA, 0, "ecdsa keys must have 256, 384 or 521 bits, not 0"},
		{Ed25519, 256, ""},
		{Ed25519, 255, "ed25519 keys must have 256 bits, not 255"},
		{DSA, 1024, ""},
		{DSA, 2048, "dsa keys must have 1024 bits, not 2048"},
		{"RSA", 2048, `unknown key kind "RSA" (want rsa, dsa, ecdsa or ed25519)`},
		{"", 2048, `unknown key kind "" (want rsa, dsa, ecdsa or ed25519)`},
	}
	for _, tt := range tests {
		err := CheckBits(tt.kind, tt.bits)
		if got := errText(err); got != tt.wantErr {
			t.Errorf("CheckBits(%q, %d) = %q, want %q", tt.kind, tt.bits, got, tt.wantErr)
		}
	}
}

func TestDefaultBits(t *testing.T) {
	for kind, want := range map[Kind]int{RSA: 2048, ECDSA: 256, Ed25519: 256, DSA: 1024, "x": 0} {
		if got := DefaultBits(kind); got != want {
			t.Errorf("DefaultBits(%q) = %d, want %d", kind, got, want)
		}
		if want != 0 {
			if err := CheckBits(kind, want); err != nil {
				t.Errorf("DefaultBits(%q) fails CheckBits: %v", kind, err)
			}
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
