package slotstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterr "go.etcd.io/bbolt/errors"
)

// BoltFile is the embedded store's file in the directory given to OpenBolt.
const BoltFile = "slots.db"

var (
	boltKeys = []byte("keys") // key -> 8-byte revision, value
	boltMeta = []byte("meta") // "rev" -> the last revision given
	boltRev  = []byte("rev")
)

// Bolt is the embedded backend: one bbolt file, written by one process (the
// file lock), every commit fsynced before it returns. Revisions come from a
// counter kept in the same file, one step per commit, as etcd's.
type Bolt struct {
	db       *bolt.DB
	path     string
	inflight atomic.Int32

	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{}
}

// OpenBolt opens (creating it if needed) the embedded store in dir. A second
// process opening the same store gets ErrLocked at once.
func OpenBolt(dir string) (*Bolt, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil { //nolint:gosec // G703: dir is the master's data dir, from its own configuration
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	path := filepath.Join(dir, BoltFile)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 100 * time.Millisecond})
	if errors.Is(err, bolterr.ErrTimeout) {
		return nil, fmt.Errorf("opening %s: %w (another join-service is running on this data dir?)", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(boltKeys); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(boltMeta)
		return err
	})
	if err != nil {
		_ = db.Close() // the error above says more
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	// bbolt waits up to MaxBatchDelay for more commits to share an fsync;
	// its 10ms default would be most of a lone fetch's time.
	db.MaxBatchDelay = 2 * time.Millisecond
	return &Bolt{db: db, path: path, waiters: map[string]map[chan struct{}]struct{}{}}, nil
}

// Close closes the file and releases its lock.
func (b *Bolt) Close() error { return b.db.Close() }

func boltValue(v []byte) (int64, []byte) {
	if len(v) < 8 {
		return 0, nil
	}
	return int64(binary.BigEndian.Uint64(v[:8])), v[8:] //nolint:gosec // G115: written from a positive int64 below
}

// Get implements Backend.
func (b *Bolt) Get(_ context.Context, key string) (Item, error) {
	it := Item{Key: key}
	err := b.db.View(func(tx *bolt.Tx) error {
		rev, val := boltValue(tx.Bucket(boltKeys).Get([]byte(key)))
		it.Rev, it.Value = rev, bytes.Clone(val)
		return nil
	})
	if err != nil {
		return it, fmt.Errorf("reading %s: %w", b.path, err)
	}
	return it, nil
}

// List implements Backend.
func (b *Bolt) List(_ context.Context, prefix string) ([]Item, error) {
	var out []Item
	err := b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(boltKeys).Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			rev, val := boltValue(v)
			out = append(out, Item{Key: string(k), Rev: rev, Value: bytes.Clone(val)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", b.path, err)
	}
	return out, nil
}

// Commit implements Backend. A lone commit is a transaction of its own;
// concurrent ones share one fsync (bbolt's Batch, which reruns a failed
// batch one commit at a time, so a conflict in one does not undo the
// others).
func (b *Bolt) Commit(_ context.Context, ops ...Op) error {
	run := b.db.Update
	if b.inflight.Add(1) > 1 {
		run = b.db.Batch
	}
	defer b.inflight.Add(-1)
	err := run(func(tx *bolt.Tx) error {
		keys, meta := tx.Bucket(boltKeys), tx.Bucket(boltMeta)
		for _, op := range ops {
			if op.Rev == AnyRev {
				continue
			}
			if rev, _ := boltValue(keys.Get([]byte(op.Key))); rev != op.Rev {
				return ErrConflict
			}
		}
		last, _ := boltValue(meta.Get(boltRev))
		rev := last + 1
		var rb [8]byte
		binary.BigEndian.PutUint64(rb[:], uint64(rev)) //nolint:gosec // G115: a counter from 1, never negative
		if err := meta.Put(boltRev, rb[:]); err != nil {
			return err
		}
		for _, op := range ops {
			if op.Delete {
				if err := keys.Delete([]byte(op.Key)); err != nil {
					return err
				}
				continue
			}
			v := make([]byte, 8+len(op.Value))
			copy(v, rb[:])
			copy(v[8:], op.Value)
			if err := keys.Put([]byte(op.Key), v); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, ErrConflict) {
		return ErrConflict
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", b.path, err)
	}
	b.mu.Lock()
	for _, op := range ops {
		for ch := range b.waiters[op.Key] {
			close(ch)
		}
		delete(b.waiters, op.Key)
	}
	b.mu.Unlock()
	return nil
}

// Watch implements Backend: a commit in this process wakes the watchers of
// the keys it wrote; no other process can write the file.
func (b *Bolt) Watch(ctx context.Context, key string, rev int64) error {
	ch := make(chan struct{})
	b.mu.Lock()
	if b.waiters[key] == nil {
		b.waiters[key] = map[chan struct{}]struct{}{}
	}
	b.waiters[key][ch] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.waiters[key], ch)
		if len(b.waiters[key]) == 0 {
			delete(b.waiters, key)
		}
		b.mu.Unlock()
	}()
	// Registered first, read second: a commit between the two is seen by
	// the read, one after it closes ch.
	it, err := b.Get(ctx, key)
	if err != nil || it.Rev != rev {
		return err
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
