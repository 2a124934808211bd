package slotstore

import (
	"errors"
	"strings"
	"testing"
)

// contractFetchKey: a fetch retried with the run's key, through another
// client, is answered again without a use; anyone else is refused as
// before.
func contractFetchKey(t *testing.T, s, other *Store) {
	ctx := ctxT(t)
	key, key2 := strings.Repeat("k", 22), strings.Repeat("j", 22)
	a, _ := s.Add(ctx, NewSlot{Config: []byte("cfg")})
	if g, again, err := s.FetchKeyed(ctx, a.Slot.UUID, a.Secret, key); err != nil || again || g.Used != 1 {
		t.Fatalf("first fetch: %v again=%v %+v", err, again, g)
	}
	g, again, err := other.FetchKeyed(ctx, a.Slot.UUID, a.Secret, key)
	if err != nil || !again || g.Used != 1 || string(g.Config) != "cfg" {
		t.Fatalf("the run's retry through another client: %v again=%v %+v", err, again, g)
	}
	if _, _, err := other.FetchKeyed(ctx, a.Slot.UUID, a.Secret, key2); !errors.Is(err, ErrSpent) {
		t.Fatalf("another run's fetch: %v, want ErrSpent", err)
	}
	if _, err := other.Fetch(ctx, a.Slot.UUID, a.Secret); !errors.Is(err, ErrSpent) {
		t.Fatalf("a fetch without the key: %v, want ErrSpent", err)
	}
	if _, _, err := other.FetchKeyed(ctx, a.Slot.UUID, newSecret(), key); !errors.Is(err, ErrWrongSecret) {
		t.Fatalf("the run's key with a wrong secret: %v, want ErrWrongSecret", err)
	}
	if _, _, err := s.FetchKeyed(ctx, a.Slot.UUID, a.Secret, "short"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a short key: %v, want ErrInvalid", err)
	}
	if g, _ := s.Get(ctx, a.Slot.UUID); g.Used != 1 {
		t.Fatalf("used %d after the retries, want 1", g.Used)
	}

	pool := newSecret()
	for range 2 {
		if _, err := s.Add(ctx, NewSlot{Dynamic: true, Secret: pool}); err != nil {
			t.Fatal(err)
		}
	}
	x, again, err := s.AssignDynamicKeyed(ctx, pool, key)
	if err != nil || again {
		t.Fatalf("assign: %v again=%v", err, again)
	}
	if y, again, err := other.AssignDynamicKeyed(ctx, pool, key); err != nil || !again || y.UUID != x.UUID || y.Used != 1 {
		t.Fatalf("the run's retry: %v again=%v %s, want %s", err, again, y.UUID, x.UUID)
	}
	if y, _, err := other.AssignDynamicKeyed(ctx, pool, key2); err != nil || y.UUID == x.UUID {
		t.Fatalf("another run: %v %s", err, y.UUID)
	}
	if _, _, err := other.AssignDynamicKeyed(ctx, pool, strings.Repeat("i", 22)); !errors.Is(err, ErrNoFreeSlot) {
		t.Fatalf("a third run: %v, want ErrNoFreeSlot", err)
	}
}

// contractFinalReport: a final report spends a counted slot whatever uses
// it had left; a reusable slot stays reusable.
func contractFinalReport(t *testing.T, s *Store) {
	ctx := ctxT(t)
	key := rootKey(t, "root@n")
	a, _ := s.Add(ctx, NewSlot{Uses: 3})
	if _, err := s.Fetch(ctx, a.Slot.UUID, a.Secret); err != nil {
		t.Fatal(err)
	}
	if g, err := s.Report(ctx, a.Slot.UUID, a.Secret, Report{Status: "applying", RootKey: key}); err != nil || g.State != Assigned {
		t.Fatalf("a report that is not final: %v %+v", err, g)
	}
	g, err := s.Report(ctx, a.Slot.UUID, a.Secret, Report{Status: "joined", RootKey: key, Final: true})
	if err != nil || g.State != Spent || g.Closed.IsZero() || g.Used != 1 {
		t.Fatalf("the final report: %v %+v", err, g)
	}
	if _, err := s.Fetch(ctx, a.Slot.UUID, a.Secret); !errors.Is(err, ErrSpent) {
		t.Fatalf("a fetch after the final report: %v, want ErrSpent", err)
	}
	if g, _ := s.Get(ctx, a.Slot.UUID); g.State != Spent || g.Used != 1 {
		t.Fatalf("after the refused fetch: %+v", g)
	}
	re, _ := s.Add(ctx, NewSlot{Reusable: true})
	if _, err := s.Fetch(ctx, re.Slot.UUID, re.Secret); err != nil {
		t.Fatal(err)
	}
	if g, err := s.Report(ctx, re.Slot.UUID, re.Secret, Report{Status: "joined", RootKey: key, Final: true}); err != nil || g.State != Assigned {
		t.Fatalf("a reusable slot's final report: %v %+v", err, g)
	}
	if _, err := s.Fetch(ctx, re.Slot.UUID, re.Secret); err != nil {
		t.Fatalf("a reusable slot after its final report: %v", err)
	}
}

// contractKeylessReport: a node that has no root key yet may report (its
// failure) without one; that pins nothing, and once a key is pinned every
// report needs it.
func contractKeylessReport(t *testing.T, s *Store) {
	ctx := ctxT(t)
	a, _ := s.Add(ctx, NewSlot{Uses: 2})
	if _, err := s.Fetch(ctx, a.Slot.UUID, a.Secret); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Report(ctx, a.Slot.UUID, a.Secret, Report{Status: "failed"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a report without a key, not marked keyless: %v, want ErrInvalid", err)
	}
	g, err := s.Report(ctx, a.Slot.UUID, a.Secret, Report{Status: "failed", Params: map[string]string{"error": "bad document"}, Keyless: true})
	if err != nil || g.PinnedKey != "" || g.Report == nil || g.Report.Status != "failed" || g.Report.Params["error"] != "bad document" {
		t.Fatalf("a keyless failed report: %v %+v", err, g)
	}
	key := rootKey(t, "root@n")
	if g, err := s.Report(ctx, a.Slot.UUID, a.Secret, Report{Status: "applying", RootKey: key}); err != nil || g.PinnedKey == "" {
		t.Fatalf("a report with a key after a keyless one: %v %+v", err, g)
	}
	if _, err := s.Report(ctx, a.Slot.UUID, a.Secret, Report{Status: "failed", Keyless: true}); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("a keyless report once a key is pinned: %v, want ErrKeyMismatch", err)
	}
}
