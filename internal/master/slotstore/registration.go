package slotstore

import (
	"encoding/hex"
	"fmt"
)

// Backend returns the store's backend, so that another record kept beside
// the slots (join-service's registration requests) commits with the same
// versioned multi-key transactions, in the same file or etcd prefix.
// Its keys must stay out of the slot/ and config/ prefixes.
func (s *Store) Backend() Backend { return s.b }

// HashSecret is the form in which a secret is stored: hex SHA-256. A
// machine that asks to be registered sends this of its own secret, so
// that the master never holds the secret itself.
func HashSecret(secret string) string { return hashSecret(secret) }

// HashMatches compares a stored hash with the hash of a presented secret
// in constant time.
func HashMatches(stored, hash string) bool { return hashMatches(stored, hash) }

// CheckSecretHash accepts 64 lower-case hex digits.
func CheckSecretHash(h string) error {
	if b, err := hex.DecodeString(h); err != nil || len(b) != 32 || hex.EncodeToString(b) != h {
		return fmt.Errorf("%w: secret hash: want 64 lower-case hex digits (SHA-256)", ErrInvalid)
	}
	return nil
}

// NewUUID returns a random (version 4) UUID, the form of a slot's id: the
// registrar chooses a slot's id before it issues the slot.
func NewUUID() string { return newUUID() }
