package slotstore

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// secretBytes is 256 random bits; the issue asks for at least 128.
const secretBytes = 32

// Bounds of a secret given by the caller (a dynamic pool's shared secret):
// base64url text of at least 22 characters holds at least 128 bits. Its
// randomness cannot be checked here; the admin side should only pass
// secrets that this package generated.
const (
	minSecretLen = 22
	maxSecretLen = 128
)

func newSecret() string {
	b := make([]byte, secretBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func checkSecret(s string) error {
	if len(s) < minSecretLen || len(s) > maxSecretLen {
		return fmt.Errorf("%w: secret: %d characters, want %d to %d", ErrInvalid, len(s), minSecretLen, maxSecretLen)
	}
	for _, c := range []byte(s) {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: secret: not base64url text", ErrInvalid)
		}
	}
	return nil
}

// hashSecret is a plain SHA-256: a slow KDF (bcrypt, Argon2) defends guessable
// passwords against an offline search, but a secret of at least 128 random
// bits cannot be searched whatever the hash, and a fast hash keeps a fetch
// cheap for the service (no CPU to burn per wrong guess).
func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// hashMatches compares in constant time, so the answer's timing tells
// nothing about how much of the hash matched.
func hashMatches(storedHash, hash string) bool {
	return subtle.ConstantTimeCompare([]byte(storedHash), []byte(hash)) == 1
}

// newOpID names one operation, so that after a commit of unknown outcome the
// store can read back whether it landed.
func newOpID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
