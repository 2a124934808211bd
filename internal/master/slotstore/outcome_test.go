package slotstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// lossy is a backend whose next commit fails with an unknown outcome: it
// either lands and then reports the failure (the answer was lost), or fails
// without landing (the request was).
type lossy struct {
	Backend
	land, drop int // commits left to spoil
}

func (l *lossy) Commit(ctx context.Context, ops ...Op) error {
	switch {
	case l.land > 0:
		l.land--
		if err := l.Backend.Commit(ctx, ops...); err != nil {
			return err
		}
		return fmt.Errorf("%w: the answer was lost", ErrUnavailable)
	case l.drop > 0:
		l.drop--
		return fmt.Errorf("%w: the request was lost", ErrUnavailable)
	}
	return l.Backend.Commit(ctx, ops...)
}

// Each operation, told that its commit may have failed, reads back whether
// it landed: it is done once, never twice, never lost.
func TestUnknownOutcomeDoneOnce(t *testing.T) {
	for _, mode := range []string{"landed", "lost"} {
		t.Run(mode, func(t *testing.T) {
			b, err := OpenBolt(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			l := &lossy{Backend: b}
			clk := newClock()
			s := New(l, Options{Now: clk.now})
			ctx := ctxT(t)
			spoil := func() {
				if mode == "landed" {
					l.land = 1
				} else {
					l.drop = 1
				}
			}

			spoil()
			a, err := s.Add(ctx, NewSlot{UUID: "0f6e3b8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b", Config: []byte("c")})
			if err != nil {
				t.Fatalf("add: %v", err)
			}
			spoil()
			if g, err := s.Fetch(ctx, a.Slot.UUID, a.Secret); err != nil || string(g.Config) != "c" || g.Used != 1 {
				t.Fatalf("fetch: %v %+v", err, g)
			}
			if _, err := s.Fetch(ctx, a.Slot.UUID, a.Secret); !errors.Is(err, ErrSpent) {
				t.Fatalf("second fetch: %v", err)
			}
			spoil()
			if _, err := s.Report(ctx, a.Slot.UUID, a.Secret, Report{RootKey: rootKey(t, "")}); err != nil {
				t.Fatalf("report: %v", err)
			}
			spoil()
			if rev, err := s.SetConfig(ctx, a.Slot.UUID, []byte("d")); err != nil || rev != 2 {
				t.Fatalf("set-config: %d %v", rev, err)
			}
			if _, rev, _ := s.WatchConfig(ctx, a.Slot.UUID, 0); rev != 2 {
				t.Fatalf("config revision %d, want 2", rev)
			}

			pool := newSecret()
			for range 2 {
				if _, err := s.Add(ctx, NewSlot{Dynamic: true, Secret: pool}); err != nil {
					t.Fatal(err)
				}
			}
			spoil()
			first, err := s.AssignDynamic(ctx, pool)
			if err != nil {
				t.Fatalf("assign: %v", err)
			}
			second, err := s.AssignDynamic(ctx, pool)
			if err != nil || second.UUID == first.UUID {
				t.Fatalf("second assign: %v %s", err, second.UUID)
			}

			clk.advance(2 * time.Hour)
			fresh, _ := s.Add(ctx, NewSlot{})
			spoil()
			if n, err := s.RemoveStale(ctx, time.Hour); err != nil || n != 3 {
				t.Fatalf("remove-stale: %d %v, want the 3 unseen for 2h", n, err)
			}
			spoil()
			if err := s.Remove(ctx, fresh.Slot.UUID); err != nil {
				t.Fatalf("remove: %v", err)
			}
			if l, _ := s.List(ctx); len(l) != 0 {
				t.Fatalf("%d slots left, want none", len(l))
			}
		})
	}
}
