package slotstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// DefaultGrace is how long an expired slot that was never used is kept
// before the etcd lease or Sweep removes it, so that a node that comes late
// is told "expired" (and the audit log says so) rather than "unknown".
const DefaultGrace = 10 * time.Minute

// Options tune a Store; the zero value is the production setting.
type Options struct {
	Now   func() time.Time // the clock (tests move it)
	Grace time.Duration    // 0: DefaultGrace; negative: none
	// Retries bounds the conflicts one operation retries (0: 200).
	Retries int
	// Unavailable bounds how long an operation retries a backend that
	// does not answer (a member died, a leader election) (0: 15s).
	Unavailable time.Duration
}

// Store is the rendezvous cache: the slot rules over a Backend.
type Store struct {
	b           Backend
	now         func() time.Time
	grace       time.Duration
	retries     int
	unavailable time.Duration
}

// New returns a Store over b; Close closes b.
func New(b Backend, o Options) *Store {
	s := &Store{b: b, now: o.Now, grace: o.Grace, retries: o.Retries, unavailable: o.Unavailable}
	if s.now == nil {
		s.now = time.Now
	}
	switch {
	case s.grace == 0:
		s.grace = DefaultGrace
	case s.grace < 0:
		s.grace = 0
	}
	if s.retries == 0 {
		s.retries = 200
	}
	if s.unavailable == 0 {
		s.unavailable = 15 * time.Second
	}
	return s
}

// Close closes the backend.
func (s *Store) Close() error { return s.b.Close() }

const (
	slotPrefix   = "slot/"
	configPrefix = "config/"
)

func slotKey(uuid string) string   { return slotPrefix + uuid }
func configKey(uuid string) string { return configPrefix + uuid }

// config is the value of a config key: one header line, then the text as
// given, byte for byte.
type configHeader struct {
	Rev int64  `json:"rev"`
	Op  string `json:"op"`
}

func encodeConfig(h configHeader, text []byte) []byte {
	head, _ := json.Marshal(h)
	return append(append(head, '\n'), text...)
}

func decodeConfig(v []byte) (configHeader, []byte, error) {
	var h configHeader
	i := bytes.IndexByte(v, '\n')
	if i < 0 {
		return h, nil, errors.New("config record has no header")
	}
	if err := json.Unmarshal(v[:i], &h); err != nil {
		return h, nil, fmt.Errorf("config record header: %w", err)
	}
	return h, v[i+1:], nil
}

func (s *Store) utcNow() time.Time { return s.now().UTC() }

func (s *Store) loadRecord(ctx context.Context, uuid string) (*record, Item, error) {
	it, err := s.b.Get(ctx, slotKey(uuid))
	if err != nil {
		return nil, it, err
	}
	if it.Rev == 0 {
		return nil, it, ErrUnknown
	}
	r, err := decodeRecord(it)
	return r, it, err
}

func decodeRecord(it Item) (*record, error) {
	var r record
	if err := json.Unmarshal(it.Value, &r); err != nil {
		return nil, fmt.Errorf("slot record %s: %w", it.Key, err)
	}
	return &r, nil
}

func encodeRecord(r *record) []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err) // only strings, ints, times and maps of strings
	}
	return b
}

func (s *Store) loadConfig(ctx context.Context, uuid string) (configHeader, []byte, Item, error) {
	it, err := s.b.Get(ctx, configKey(uuid))
	if err != nil {
		return configHeader{}, nil, it, err
	}
	if it.Rev == 0 {
		return configHeader{}, nil, it, ErrUnknown
	}
	h, text, err := decodeConfig(it.Value)
	return h, text, it, err
}

// retry runs try, which reads what it needs and returns the ops that make
// the change (none: done, or refused with err), and commits them, until the
// commit lands. A conflict means another process changed the slot first:
// try again on what is there now, a bounded number of times. After an
// error of unknown outcome (last wraps ErrUnavailable), the next try reads
// the slot back and finds its own operation id if the commit had landed, so
// nothing is done twice. retry tells whether its own commit landed.
func (s *Store) retry(ctx context.Context, try func(last error) ([]Op, error)) (bool, error) {
	conflicts := 0
	var down time.Time
	var last error
	for {
		ops, err := try(last)
		if err == nil && len(ops) == 0 {
			return false, nil
		}
		if err == nil {
			if err = s.b.Commit(ctx, ops...); err == nil {
				return true, nil
			}
			last = err
		}
		switch {
		case errors.Is(err, ErrConflict):
			conflicts++
			if conflicts > s.retries {
				return false, ErrContended
			}
			// Jitter only spreads the retries: it need not be unpredictable.
			sleep(ctx, time.Duration(rand.Int64N(int64(time.Millisecond)*int64(min(conflicts, 10))))) //nolint:gosec // G404
		case errors.Is(err, ErrUnavailable):
			if down.IsZero() {
				down = time.Now()
			} else if time.Since(down) > s.unavailable {
				return false, err
			}
			sleep(ctx, 50*time.Millisecond+time.Duration(rand.Int64N(int64(100*time.Millisecond)))) //nolint:gosec // G404: jitter
		default:
			return false, err
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Add stores a new slot (the seed's pre_register) and returns it with its
// secret, which is not kept: only its hash is.
func (s *Store) Add(ctx context.Context, n NewSlot) (Added, error) {
	var err error
	if n.UUID == "" {
		n.UUID = newUUID()
	} else if n.UUID, err = CheckUUID(n.UUID); err != nil {
		return Added{}, err
	}
	hash := n.SecretHash
	switch {
	case hash != "" && n.Secret != "":
		return Added{}, fmt.Errorf("%w: secret: give a secret or its hash, not both", ErrInvalid)
	case hash != "":
		if err := CheckSecretHash(hash); err != nil {
			return Added{}, err
		}
	case n.Secret == "":
		n.Secret = newSecret()
		hash = hashSecret(n.Secret)
	default:
		if err := checkSecret(n.Secret); err != nil {
			return Added{}, err
		}
		hash = hashSecret(n.Secret)
	}
	if n.NodeName != "" {
		if err := checkNodeName(n.NodeName); err != nil {
			return Added{}, err
		}
	}
	if err := checkConfig(n.Config); err != nil {
		return Added{}, err
	}
	if err := checkParams("params", n.Params); err != nil {
		return Added{}, err
	}
	switch {
	case n.Reusable && n.Uses != 0:
		return Added{}, fmt.Errorf("%w: uses: a reusable slot has no use count", ErrInvalid)
	case n.Uses < 0:
		return Added{}, fmt.Errorf("%w: uses: %d, want at least 1", ErrInvalid, n.Uses)
	case n.Uses == 0 && !n.Reusable:
		n.Uses = 1
	}
	if n.TTL == 0 {
		n.TTL = DefaultTTL
	} else if n.TTL < time.Second {
		return Added{}, fmt.Errorf("%w: ttl: %s, want at least 1s", ErrInvalid, n.TTL)
	}
	now := s.utcNow()
	op := newOpID()
	r := &record{
		UUID: n.UUID, NodeName: n.NodeName, Params: n.Params, Dynamic: n.Dynamic,
		SecretHash: hash, MaxUses: n.Uses, Created: now, Expires: now.Add(n.TTL),
		Ops: []string{op},
	}
	// The lease outlives the expiry by the grace; the expiry itself is
	// decided by comparing times, since a lease may fire late.
	ttl := n.TTL + s.grace
	_, err = s.retry(ctx, func(error) ([]Op, error) {
		got, _, err := s.loadRecord(ctx, n.UUID)
		switch {
		case err == nil && got.did(op):
			return nil, nil
		case err == nil:
			return nil, fmt.Errorf("%w: %s", ErrExists, n.UUID)
		case !errors.Is(err, ErrUnknown):
			return nil, err
		}
		return []Op{
			{Key: slotKey(n.UUID), Rev: 0, Value: encodeRecord(r), TTL: ttl},
			{Key: configKey(n.UUID), Rev: AnyRev, Value: encodeConfig(configHeader{Rev: 1, Op: op}, n.Config), TTL: ttl},
		}, nil
	})
	if err != nil {
		return Added{}, err
	}
	sl := r.slot()
	sl.Config, sl.ConfigRevision = n.Config, 1
	return Added{Slot: sl, Secret: n.Secret}, nil
}

// Get returns a slot with its config.
func (s *Store) Get(ctx context.Context, uuid string) (Slot, error) {
	r, _, err := s.loadRecord(ctx, uuid)
	if err != nil {
		return Slot{}, err
	}
	h, text, _, err := s.loadConfig(ctx, uuid)
	if err != nil && !errors.Is(err, ErrUnknown) {
		return Slot{}, err
	}
	sl := r.slot()
	sl.Config, sl.ConfigRevision = text, h.Rev
	return sl, nil
}

// List returns every slot, oldest first, without configs.
func (s *Store) List(ctx context.Context) ([]Slot, error) {
	rs, _, err := s.listRecords(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Slot, len(rs))
	for i, r := range rs {
		out[i] = r.slot()
	}
	return out, nil
}

func (s *Store) listRecords(ctx context.Context) ([]*record, []Item, error) {
	items, err := s.b.List(ctx, slotPrefix)
	if err != nil {
		return nil, nil, err
	}
	rs := make([]*record, len(items))
	for i, it := range items {
		if rs[i], err = decodeRecord(it); err != nil {
			return nil, nil, err
		}
	}
	idx := make([]int, len(rs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		if c := rs[a].Created.Compare(rs[b].Created); c != 0 {
			return c
		}
		return bytes.Compare([]byte(rs[a].UUID), []byte(rs[b].UUID))
	})
	sr, si := make([]*record, len(rs)), make([]Item, len(rs))
	for i, j := range idx {
		sr[i], si[i] = rs[j], items[j]
	}
	return sr, si, nil
}

// Remove deletes a slot (the seed's remove).
func (s *Store) Remove(ctx context.Context, uuid string) error {
	_, err := s.retry(ctx, func(last error) ([]Op, error) {
		_, it, err := s.loadRecord(ctx, uuid)
		if errors.Is(err, ErrUnknown) && errors.Is(last, ErrUnavailable) {
			return nil, nil // our commit of unknown outcome landed (or another remover's)
		}
		if err != nil {
			return nil, err
		}
		return removeOps(uuid, it.Rev), nil
	})
	return err
}

func removeOps(uuid string, rev int64) []Op {
	return []Op{{Key: slotKey(uuid), Rev: rev, Delete: true}, {Key: configKey(uuid), Rev: AnyRev, Delete: true}}
}

// RemoveStale deletes the slots whose last report, or creation if never
// seen, is older than olderThan (the seed's remove_stale), and returns how
// many it deleted. A slot reported on meanwhile is kept.
func (s *Store) RemoveStale(ctx context.Context, olderThan time.Duration) (int, error) {
	return s.removeWhere(ctx, func(r *record, now time.Time) bool {
		return r.lastActive().Before(now.Add(-olderThan))
	})
}

// Sweep deletes the slots never used whose expiry is more than the grace
// past: what etcd's leases do by themselves, and the embedded store needs
// run from time to time.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	return s.removeWhere(ctx, func(r *record, now time.Time) bool {
		return r.Used == 0 && !now.Before(r.Expires.Add(s.grace))
	})
}

func (s *Store) removeWhere(ctx context.Context, stale func(*record, time.Time) bool) (int, error) {
	rs, items, err := s.listRecords(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for i, r := range rs {
		if !stale(r, s.utcNow()) {
			continue
		}
		uuid, rev := r.UUID, items[i].Rev
		gone := false
		landed, err := s.retry(ctx, func(last error) ([]Op, error) {
			if last != nil {
				cur, it, err := s.loadRecord(ctx, uuid)
				if errors.Is(err, ErrUnknown) {
					// Removed by our commit of unknown outcome, or by
					// another remover after a conflict (counted there).
					gone = errors.Is(last, ErrUnavailable)
					return nil, nil
				}
				if err != nil {
					return nil, err
				}
				if !stale(cur, s.utcNow()) {
					return nil, nil // reported on meanwhile
				}
				rev = it.Rev
			}
			return removeOps(uuid, rev), nil
		})
		if err != nil {
			return n, err
		}
		if landed || gone {
			n++
		}
	}
	return n, nil
}
