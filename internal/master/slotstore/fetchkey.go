package slotstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// A fetch key is a random value that one client run sends with every
// attempt of its fetch (or dynamic assignment). The use is consumed once,
// by the first attempt that lands, under the key's operation id; a later
// attempt with the same key, through any replica, finds that id in the
// slot's record and is answered again without consuming another use. So a
// fetch whose answer was lost (the connection cut, a replica killed after
// the commit) is not a spent secret, and single use still holds against
// everyone else: someone who has the secret (a boot parameter is
// world-readable) but not the run's key is refused as before.

// Bounds of a fetch key: at least 128 bits as base64url.
const (
	minFetchKey = 22
	maxFetchKey = 128
)

// keyOp is the operation id a fetch key is recorded under: a hash, so that
// the store does not hold the key itself.
func keyOp(key string) (string, error) {
	if len(key) < minFetchKey || len(key) > maxFetchKey {
		return "", fmt.Errorf("%w: fetch key: %d characters, want %d to %d", ErrInvalid, len(key), minFetchKey, maxFetchKey)
	}
	h := sha256.Sum256([]byte("nodejoin fetch key\x00" + key))
	return "k" + hex.EncodeToString(h[:16]), nil
}

// FetchKeyed is Fetch for a client that sends key with every attempt:
// again tells that this key's earlier fetch had consumed the use and the
// slot is answered again, its use count unchanged.
func (s *Store) FetchKeyed(ctx context.Context, uuid, secret, key string) (sl Slot, again bool, err error) {
	op, err := keyOp(key)
	if err != nil {
		return Slot{}, false, err
	}
	return s.fetch(ctx, uuid, secret, op)
}

// AssignDynamicKeyed is AssignDynamic for a client that sends key with
// every attempt: the slot this key was given before is given again.
func (s *Store) AssignDynamicKeyed(ctx context.Context, poolSecret, key string) (sl Slot, again bool, err error) {
	op, err := keyOp(key)
	if err != nil {
		return Slot{}, false, err
	}
	return s.assignDynamic(ctx, poolSecret, op)
}
