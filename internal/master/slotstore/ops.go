package slotstore

import (
	"context"
	"errors"
	"time"
)

// Fetch consumes one use of the slot's secret and returns the slot with its
// config: the node fetching what it needs to join. It refuses an unknown
// slot, a wrong secret, an expired secret, a spent slot, and a dynamic slot
// not yet assigned, each with its own error.
func (s *Store) Fetch(ctx context.Context, uuid, secret string) (Slot, error) {
	sl, _, err := s.fetch(ctx, uuid, secret, newOpID())
	return sl, err
}

// fetch is Fetch as operation op; again tells that op had consumed its use
// before this call (a fetch key's earlier attempt).
func (s *Store) fetch(ctx context.Context, uuid, secret, op string) (Slot, bool, error) {
	var out Slot
	again := false
	_, err := s.retry(ctx, func(last error) ([]Op, error) {
		r, it, err := s.loadRecord(ctx, uuid)
		if err != nil {
			return nil, err
		}
		// The secret first, even for an operation that landed: a fetch
		// key is no credential without it.
		if !hashMatches(r.SecretHash, hashSecret(secret)) {
			return nil, ErrWrongSecret
		}
		done := r.did(op)
		again = done && last == nil
		if !done {
			// Refusals first: a wrong secret costs no config read.
			if err := s.usable(r, hashSecret(secret)); err != nil {
				return nil, err
			}
			if r.Dynamic && r.Used == 0 {
				return nil, ErrUnassigned
			}
		}
		h, text, cit, err := s.loadConfig(ctx, uuid)
		if err != nil {
			return nil, err
		}
		if done {
			out = r.slot()
			out.Config, out.ConfigRevision = text, h.Rev
			return nil, nil
		}
		ops := s.consume(r, it, cit, op)
		out = r.slot()
		out.Config, out.ConfigRevision = text, h.Rev
		return ops, nil
	})
	return out, again, err
}

// usable checks the secret first, so that nothing about an unknown secret's
// slot (expired, spent) is decided before the secret is known to be right.
func (s *Store) usable(r *record, secretHash string) error {
	switch {
	case !hashMatches(r.SecretHash, secretHash):
		return ErrWrongSecret
	case !s.utcNow().Before(r.Expires):
		return ErrExpired
	case r.state() == Spent:
		return ErrSpent
	}
	return nil
}

// consume counts one use into r and returns the commit: the record, and on
// the first use the config rewritten as it is, which detaches both keys
// from the expiry lease: a used slot stays, as the record of its node, until
// it is removed or remove-stale takes it.
func (s *Store) consume(r *record, it, cit Item, op string) []Op {
	if r.Used == 0 {
		r.Assigned = s.utcNow()
	}
	r.Used++
	r.addOp(op)
	ops := []Op{{Key: it.Key, Rev: it.Rev, Value: encodeRecord(r)}}
	if r.Used == 1 {
		ops = append(ops, Op{Key: cit.Key, Rev: cit.Rev, Value: cit.Value})
	}
	return ops
}

// AssignDynamic hands the first free dynamic slot of the pool whose secret
// is poolSecret to the caller (the seed's assign_dynamic), consuming one use
// of it, and returns it with its config. Two callers never get the same
// slot: each takes it by a commit on the slot's revision, and a caller that
// loses moves on to the next free slot. ErrWrongSecret: no dynamic slot has
// this secret; ErrNoFreeSlot: none of them is free and unexpired.
func (s *Store) AssignDynamic(ctx context.Context, poolSecret string) (Slot, error) {
	sl, _, err := s.assignDynamic(ctx, poolSecret, newOpID())
	return sl, err
}

// assignDynamic is AssignDynamic as operation op; again tells that op had
// taken its slot before this call (a fetch key's earlier attempt).
func (s *Store) assignDynamic(ctx context.Context, poolSecret, op string) (Slot, bool, error) {
	var last error
	conflicts := 0
	var down time.Time
	for {
		out, found, err := s.assignOnce(ctx, poolSecret, op)
		switch {
		case err == nil:
			return out, found && last == nil, nil
		case errors.Is(err, ErrConflict):
			// every candidate was taken under us: list again
			conflicts++
			if conflicts > s.retries {
				return Slot{}, false, ErrContended
			}
		case errors.Is(err, ErrUnavailable):
			if down.IsZero() {
				down = time.Now()
			} else if time.Since(down) > s.unavailable {
				return Slot{}, false, err
			}
			sleep(ctx, 100*time.Millisecond)
		default:
			return Slot{}, false, err
		}
		last = err
		if err := ctx.Err(); err != nil {
			return Slot{}, false, err
		}
	}
}

// assignOnce takes one free slot of the pool as op; found: op had taken
// one before (a commit of unknown outcome that landed, or a fetch key's
// earlier attempt), which is returned.
func (s *Store) assignOnce(ctx context.Context, poolSecret, op string) (Slot, bool, error) {
	rs, items, err := s.listRecords(ctx)
	if err != nil {
		return Slot{}, false, err
	}
	hash := hashSecret(poolSecret)
	pool := false
	var cand []int
	for i, r := range rs {
		if !r.Dynamic || !hashMatches(r.SecretHash, hash) {
			continue
		}
		pool = true
		if r.did(op) {
			// An earlier commit of ours landed: that slot is ours.
			sl, err := s.Get(ctx, r.UUID)
			return sl, err == nil, err
		}
		if r.Used == 0 && s.usable(r, hash) == nil {
			cand = append(cand, i)
		}
	}
	if !pool {
		return Slot{}, false, ErrWrongSecret
	}
	if len(cand) == 0 {
		return Slot{}, false, ErrNoFreeSlot
	}
	var lastErr error = ErrConflict
	for _, i := range cand {
		r, it := rs[i], items[i]
		h, text, cit, err := s.loadConfig(ctx, r.UUID)
		if errors.Is(err, ErrUnknown) {
			continue // removed meanwhile
		}
		if err != nil {
			return Slot{}, false, err
		}
		err = s.b.Commit(ctx, s.consume(r, it, cit, op)...)
		if err == nil {
			out := r.slot()
			out.Config, out.ConfigRevision = text, h.Rev
			return out, false, nil
		}
		if !errors.Is(err, ErrConflict) {
			return Slot{}, false, err // unknown outcome: the caller lists again and looks for op
		}
		lastErr = err
	}
	return Slot{}, false, lastErr
}

// Check authenticates a node that has fetched its slot (a status report, a
// config watch) without consuming a use; the secret may have expired since.
func (s *Store) Check(ctx context.Context, uuid, secret string) (Slot, error) {
	r, _, err := s.loadRecord(ctx, uuid)
	if err != nil {
		return Slot{}, err
	}
	if err := checkFetched(r, secret); err != nil {
		return Slot{}, err
	}
	return r.slot(), nil
}

func checkFetched(r *record, secret string) error {
	switch {
	case !hashMatches(r.SecretHash, hashSecret(secret)):
		return ErrWrongSecret
	case r.Dynamic && r.Used == 0:
		return ErrUnassigned
	case r.Used == 0:
		return ErrNotFetched
	}
	return nil
}

// Report records a node's status report (the seed's update_cache). It is
// authenticated by the slot's secret, since the slot id is not secret (it
// is logged); the secret may be spent or expired, the slot must have been
// fetched. The node's root key is pinned by the first report; a report with
// another key is refused.
func (s *Store) Report(ctx context.Context, uuid, secret string, rep Report) (Slot, error) {
	var key string
	if rep.RootKey != "" || !rep.Keyless {
		var err error
		if key, err = normalRootKey(rep.RootKey); err != nil {
			return Slot{}, err
		}
	}
	if err := checkText("report: status", rep.Status, MaxStatus); err != nil {
		return Slot{}, err
	}
	if err := checkText("report: peer", rep.Peer, MaxAddr); err != nil {
		return Slot{}, err
	}
	if err := checkText("report: claimed_addr", rep.ClaimedAddr, MaxAddr); err != nil {
		return Slot{}, err
	}
	if err := checkParams("report: params", rep.Params); err != nil {
		return Slot{}, err
	}
	op := newOpID()
	var out Slot
	_, err := s.retry(ctx, func(error) ([]Op, error) {
		r, it, err := s.loadRecord(ctx, uuid)
		if err != nil {
			return nil, err
		}
		if r.did(op) {
			out = r.slot()
			return nil, nil
		}
		if err := checkFetched(r, secret); err != nil {
			return nil, err
		}
		// A keyless report pins nothing and is taken only while nothing
		// is pinned: once a key is, every report must carry it.
		if r.PinnedKey != "" && r.PinnedKey != key {
			return nil, ErrKeyMismatch
		}
		now := s.utcNow()
		if key != "" {
			r.PinnedKey = key
		}
		if rep.Final && r.Closed.IsZero() {
			r.Closed = now
		}
		r.LastSeen = now
		r.Report = &storedReport{Status: rep.Status, Params: rep.Params, Peer: rep.Peer, ClaimedAddr: rep.ClaimedAddr, RootKey: key, Time: now}
		r.addOp(op)
		out = r.slot()
		return []Op{{Key: it.Key, Rev: it.Rev, Value: encodeRecord(r)}}, nil
	})
	return out, err
}

// SetConfig replaces a slot's config and returns its new revision, one more
// than the last.
func (s *Store) SetConfig(ctx context.Context, uuid string, text []byte) (int64, error) {
	if err := checkConfig(text); err != nil {
		return 0, err
	}
	op := newOpID()
	var rev int64
	_, err := s.retry(ctx, func(error) ([]Op, error) {
		r, _, err := s.loadRecord(ctx, uuid)
		if err != nil {
			return nil, err
		}
		h, _, cit, err := s.loadConfig(ctx, uuid)
		if err != nil {
			return nil, err
		}
		if h.Op == op {
			rev = h.Rev
			return nil, nil
		}
		rev = h.Rev + 1
		// A free slot's keys keep their expiry lease.
		return []Op{{Key: cit.Key, Rev: cit.Rev, Value: encodeConfig(configHeader{Rev: rev, Op: op}, text), KeepLease: r.Used == 0}}, nil
	})
	return rev, err
}

// WatchConfig blocks until the slot's config revision is newer than after,
// then returns the config and its revision. It waits on the backend's
// watch, not by polling.
func (s *Store) WatchConfig(ctx context.Context, uuid string, after int64) ([]byte, int64, error) {
	var down time.Time
	for {
		h, text, it, err := s.loadConfig(ctx, uuid)
		if err == nil {
			down = time.Time{}
			if h.Rev > after {
				return text, h.Rev, nil
			}
			err = s.b.Watch(ctx, it.Key, it.Rev)
		}
		if cerr := ctx.Err(); cerr != nil {
			return nil, 0, cerr
		}
		switch {
		case err == nil:
		case errors.Is(err, ErrUnavailable):
			if down.IsZero() {
				down = time.Now()
			} else if time.Since(down) > s.unavailable {
				return nil, 0, err
			}
			sleep(ctx, 100*time.Millisecond)
		default:
			return nil, 0, err
		}
	}
}
