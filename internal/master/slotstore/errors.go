package slotstore

import "errors"

// The refusals are distinct so that the audit log can tell them apart; the
// API answers unknown, unassigned and wrong secret alike, so that a client
// cannot probe which slots exist.
var (
	ErrUnknown     = errors.New("unknown slot")
	ErrWrongSecret = errors.New("wrong secret")
	ErrExpired     = errors.New("secret expired")
	ErrSpent       = errors.New("slot spent: no use left")
	ErrUnassigned  = errors.New("dynamic slot not assigned yet")
	ErrNotFetched  = errors.New("slot not fetched yet")
	ErrNoFreeSlot  = errors.New("no free dynamic slot")
	ErrExists      = errors.New("slot exists")
	ErrKeyMismatch = errors.New("root key differs from the key pinned by the first report")
	ErrInvalid     = errors.New("invalid")
	ErrContended   = errors.New("too many concurrent changes to the slot; try again")

	// ErrConflict is a backend's answer to a commit whose compared
	// revisions no longer hold: nothing was applied.
	ErrConflict = errors.New("revision conflict")
	// ErrUnavailable wraps a backend error after which a commit may or may
	// not have been applied (a member died with the request in flight).
	ErrUnavailable = errors.New("store unavailable")
	// ErrLocked: another process has the embedded store open.
	ErrLocked = errors.New("store is open in another process")
)
