package sshkeys

import (
	//lint:ignore SA1019 DSA keys of clusters upgraded from Ganeti 2.15 or older
	"crypto/dsa"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Kind names a key algorithm as Ganeti's documents do ("rsa", "ecdsa", ...).
type Kind string

// The kinds of key this package knows. DSA is what clusters upgraded from
// Ganeti 2.15 or older carry; OpenSSH 7.0 disabled ssh-dss and 9.8 removed
// it, so callers ask the node's OpenSSH before they use one.
const (
	RSA     Kind = "rsa"
	ECDSA   Kind = "ecdsa"
	Ed25519 Kind = "ed25519"
	DSA     Kind = "dsa"
)

// HostKinds are the kinds of SSH host key a cluster carries and reports, in
// Ganeti's order (its SSH host key list: rsa, ecdsa, ed25519). DSA is left
// out: OpenSSH no longer offers it as a host key.
var HostKinds = []Kind{RSA, ECDSA, Ed25519}

// RootKeyPreference is the order in which an existing key pair of the login
// user is taken as its identity when the document asks for none: the
// strongest first.
var RootKeyPreference = []Kind{Ed25519, ECDSA, RSA, DSA}

// FamilyOf groups an SSH key type name ("ssh-ed25519",
// "ecdsa-sha2-nistp256", "rsa-sha2-512", a certificate type...) by the
// kind of key, the way a server offers them; an unknown name is its own
// family.
func FamilyOf(typeName string) string {
	switch {
	case strings.Contains(typeName, "ed25519"):
		return string(Ed25519)
	case strings.Contains(typeName, "ecdsa"):
		return string(ECDSA)
	case strings.Contains(typeName, "rsa"):
		return string(RSA)
	}
	return typeName
}

// KindOf returns the kind of a public key from its SSH type name.
func KindOf(pub ssh.PublicKey) (Kind, error) {
	if pub == nil {
		return "", errors.New("no public key")
	}
	switch t := pub.Type(); t {
	case ssh.KeyAlgoRSA:
		return RSA, nil
	case ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
		return ECDSA, nil
	case ssh.KeyAlgoED25519:
		return Ed25519, nil
	case sshDSS:
		return DSA, nil
	default:
		// The type name is not secret and says what was given instead
		// (a certificate, a security-key type).
		return "", fmt.Errorf("unsupported key type %q", t)
	}
}

// Bits returns the size of a public key as ssh-keygen -l reports it: the RSA
// modulus or DSA prime length, the ECDSA curve size, 256 for Ed25519; 0 for
// anything else.
func Bits(pub ssh.PublicKey) int {
	cp, ok := pub.(ssh.CryptoPublicKey)
	if !ok {
		return 0
	}
	switch k := cp.CryptoPublicKey().(type) {
	case *rsa.PublicKey:
		return k.N.BitLen()
	case *ecdsa.PublicKey:
		return k.Curve.Params().BitSize
	case ed25519.PublicKey:
		return 256
	case *dsa.PublicKey:
		return k.P.BitLen()
	}
	return 0
}

// CheckBits says whether a key of this kind and size is allowed. The RSA floor
// is NIST's 2048 (Ganeti accepted 768); the ceiling is OpenSSH's limit. DSA
// has OpenSSH's one size, 1024 (Ganeti's SSH_KEY_VALID_BITS).
func CheckBits(kind Kind, bits int) error {
	switch kind {
	case RSA:
		if bits < 2048 || bits > 16384 {
			return fmt.Errorf("rsa keys must have 2048 to 16384 bits, not %d", bits)
		}
	case ECDSA:
		if bits != 256 && bits != 384 && bits != 521 {
			return fmt.Errorf("ecdsa keys must have 256, 384 or 521 bits, not %d", bits)
		}
	case Ed25519:
		if bits != 256 {
			return fmt.Errorf("ed25519 keys must have 256 bits, not %d", bits)
		}
	case DSA:
		if bits != dsaBits {
			return fmt.Errorf("dsa keys must have %d bits, not %d", dsaBits, bits)
		}
	default:
		return unknownKind(kind)
	}
	return nil
}

// DefaultBits returns the size ssh-keygen picks for a kind, 0 for unknown
// kinds.
func DefaultBits(kind Kind) int {
	switch kind {
	case RSA:
		return 2048
	case ECDSA, Ed25519:
		return 256
	case DSA:
		return dsaBits
	}
	return 0
}

// Fingerprint returns the SHA-256 fingerprint of a public key, the text
// ssh-keygen -l prints ("SHA256:" and unpadded base64).
func Fingerprint(pub ssh.PublicKey) string {
	return FingerprintBlob(pub.Marshal())
}

// FingerprintBlob is Fingerprint of a key in its wire form (the blob that
// known_hosts and authorized_keys carry in base64).
func FingerprintBlob(blob []byte) string {
	sum := sha256.Sum256(blob)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

func unknownKind(kind Kind) error {
	// %q keeps a hostile kind to one line; kinds come from documents, not keys.
	return fmt.Errorf("unknown key kind %q (want rsa, dsa, ecdsa or ed25519)", string(kind))
}
