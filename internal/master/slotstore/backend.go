package slotstore

import (
	"context"
	"time"
)

// Backend is the whole of what Store needs from a place to keep keys: reads
// that tell each key's revision, and commits of several keys that apply
// only if every compared revision still holds. Exactly-once comes from
// Store's one implementation of the slot rules over these few calls.
//
// A slot is two keys (its record and its config), which Add and Remove
// change together: hence a commit of several operations rather than a
// single-key compare-and-swap.
type Backend interface {
	// Get returns the key's value and revision; Rev 0: the key is absent.
	Get(ctx context.Context, key string) (Item, error)
	// List returns every key under prefix, in key order.
	List(ctx context.Context, prefix string) ([]Item, error)
	// Commit applies every op or none. It returns ErrConflict, having
	// applied nothing, when a compared revision no longer holds; after
	// any other error the commit may or may not have been applied.
	Commit(ctx context.Context, ops ...Op) error
	// Watch returns once the key's revision is no longer rev (changed or
	// deleted), or with ctx's error. It may return early; the caller
	// reads the key again.
	Watch(ctx context.Context, key string, rev int64) error
	Close() error
}

// Item is a key as read.
type Item struct {
	Key   string
	Value []byte
	Rev   int64 // revision of the last change to this key; 0: absent
}

// AnyRev in Op.Rev applies the op whatever the key's revision.
const AnyRev int64 = -1

// Op is one write of a commit.
type Op struct {
	Key    string
	Rev    int64 // revision the key must still have: 0 absent, AnyRev any
	Delete bool
	Value  []byte
	// TTL > 0: the key is removed at the latest this long after the commit
	// (etcd: a lease shared by the commit's ops). The embedded backend
	// ignores it: Store.Sweep removes what a lease would.
	TTL time.Duration
	// KeepLease keeps the key's current lease on etcd; without it a write
	// detaches the key from any lease.
	KeepLease bool
}
