// Package sshkeys: STAND-IN for main's lib/sshkeys (branch master-side
// only), with the few names the master side uses. Delete this file when
// main's lib/sshkeys lands.
package sshkeys

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// Kind names a key algorithm as Ganeti's documents do.
type Kind string

// The kinds of key.
const (
	RSA     Kind = "rsa"
	ECDSA   Kind = "ecdsa"
	Ed25519 Kind = "ed25519"
)

// DefaultBits returns the size ssh-keygen picks for a kind.
func DefaultBits(kind Kind) int {
	switch kind {
	case RSA:
		return 2048
	case ECDSA, Ed25519:
		return 256
	}
	return 0
}

// CheckBits refuses sizes ssh-keygen would refuse.
func CheckBits(kind Kind, bits int) error {
	switch {
	case kind == RSA && bits >= 2048 && bits <= 16384:
	case kind == ECDSA && (bits == 256 || bits == 384 || bits == 521):
	case kind == Ed25519 && bits == 256:
	default:
		return fmt.Errorf("%s keys cannot have %d bits", kind, bits)
	}
	return nil
}

// Generate makes a new key pair with ssh-keygen in a private directory.
func Generate(kind Kind, bits int, comment string) (privatePEM, publicLine []byte, err error) {
	if bits == 0 {
		bits = DefaultBits(kind)
	}
	if err := CheckBits(kind, bits); err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "sshkeys-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "k")
	out, err := exec.Command("ssh-keygen", "-q", "-t", string(kind), "-b", strconv.Itoa(bits), "-N", "", "-C", comment, "-f", p).CombinedOutput()
	if err != nil {
		return nil, nil, fmt.Errorf("ssh-keygen: %v: %s", err, out)
	}
	if privatePEM, err = os.ReadFile(p); err != nil {
		return nil, nil, err
	}
	publicLine, err = os.ReadFile(p + ".pub")
	return privatePEM, publicLine, err
}
