package slotstore

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// namespace gives a test a store of its own: open returns a new client to
// it each time (a second process, as far as the store can tell), or the one
// backend where only one process may have it open.
type namespace func(t *testing.T) (open func() Backend)

// clock is a test clock shared by the clients of one test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// rootKey makes an authorized_keys line for an ed25519 key.
func rootKey(t testing.TB, comment string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, f := range [][]byte{[]byte("ssh-ed25519"), pub} {
		_ = binary.Write(&b, binary.BigEndian, uint32(len(f)))
		b.Write(f)
	}
	return "ssh-ed25519 " + base64.StdEncoding.EncodeToString(b.Bytes()) + " " + comment
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// runContract is the one suite every backend passes.
func runContract(t *testing.T, ns namespace, clients int) {
	setup := func(t *testing.T) (*Store, []*Store, *clock, func() Backend) {
		open := ns(t)
		clk := newClock()
		var all []*Store
		for range clients {
			all = append(all, New(open(), Options{Now: clk.now}))
		}
		return all[0], all, clk, open
	}

	t.Run("add and get", func(t *testing.T) {
		s, _, clk, _ := setup(t)
		ctx := ctxT(t)
		a, err := s.Add(ctx, NewSlot{UUID: "0F6E3B8A-1C2D-4E5F-8A9B-0C1D2E3F4A5B", NodeName: "node3.example.org",
			Config: []byte("#!/bin/sh\necho \xff\x00"), Params: map[string]string{"rack": "r1"}})
		if err != nil {
			t.Fatal(err)
		}
		if a.Slot.UUID != "0f6e3b8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b" || checkSecret(a.Secret) != nil || len(a.Secret) < 43 {
			t.Fatalf("added %+v, secret of %d chars", a.Slot, len(a.Secret))
		}
		g, err := s.Get(ctx, a.Slot.UUID)
		if err != nil {
			t.Fatal(err)
		}
		want := Slot{UUID: a.Slot.UUID, NodeName: "node3.example.org", Params: map[string]string{"rack": "r1"},
			MaxUses: 1, State: Free, Created: clk.now(), Expires: clk.now().Add(time.Hour),
			Config: []byte("#!/bin/sh\necho \xff\x00"), ConfigRevision: 1}
		if fmt.Sprintf("%+v", g) != fmt.Sprintf("%+v", want) {
			t.Fatalf("got  %+v\nwant %+v", g, want)
		}
		if _, err := s.Add(ctx, NewSlot{UUID: a.Slot.UUID}); !errors.Is(err, ErrExists) {
			t.Fatalf("second add: %v, want ErrExists", err)
		}
		clk.advance(time.Second)
		b, err := s.Add(ctx, NewSlot{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := CheckUUID(b.Slot.UUID); err != nil || b.Slot.UUID[14] != '4' || b.Secret == a.Secret {
			t.Fatalf("generated uuid %q: %v", b.Slot.UUID, err)
		}
		list, err := s.List(ctx)
		if err != nil || len(list) != 2 || list[0].UUID != a.Slot.UUID || list[1].Config != nil {
			t.Fatalf("list: %v %+v", err, list)
		}
		if _, err := s.Get(ctx, "00000000-0000-4000-8000-000000000000"); !errors.Is(err, ErrUnknown) {
			t.Fatalf("get unknown: %v", err)
		}
	})

	t.Run("add refuses bad input", func(t *testing.T) {
		s, _, _, open := setup(t)
		ctx := ctxT(t)
		for _, tc := range []struct {
			name string
			n    NewSlot
			want string
		}{
			{"uuid", NewSlot{UUID: "node3"}, `invalid: uuid: "node3" is not a UUID (8-4-4-4-12 hex digits)`},
			{"uuid digits", NewSlot{UUID: "0f6e3b8a-1c2d-4e5f-8a9b-0c1d2e3f4a5g"}, `invalid: uuid: "0f6e3b8a-1c2d-4e5f-8a9b-0c1d2e3f4a5g" is not a UUID (8-4-4-4-12 hex digits)`},
			{"short secret", NewSlot{Secret: "abc"}, "invalid: secret: 3 characters, want 22 to 128"},
			{"secret alphabet", NewSlot{Secret: strings.Repeat("a", 21) + ":"}, "invalid: secret: not base64url text"},
			{"node name", NewSlot{NodeName: "node_3"}, `invalid: node_name: "node_3" is not a DNS name`},
			{"config", NewSlot{Config: make([]byte, MaxConfig+1)}, "invalid: config: 1048577 bytes, at most 1048576 (1 MiB)"},
			{"params", NewSlot{Params: map[string]string{"k": strings.Repeat("v", 1025)}}, "invalid: params/k: 1025 bytes, at most 1024"},
			{"uses", NewSlot{Uses: -1}, "invalid: uses: -1, want at least 1"},
			{"reusable with uses", NewSlot{Uses: 2, Reusable: true}, "invalid: uses: a reusable slot has no use count"},
			{"ttl", NewSlot{TTL: time.Millisecond}, "invalid: ttl: 1ms, want at least 1s"},
		} {
			if _, err := s.Add(ctx, tc.n); err == nil || err.Error() != tc.want || !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
			}
		}
		if items, err := open().List(ctx, ""); err != nil || len(items) != 0 {
			t.Fatalf("refused adds left %d keys (%v)", len(items), err)
		}
		// A config of exactly 1 MiB is taken.
		a, err := s.Add(ctx, NewSlot{Config: bytes.Repeat([]byte{'x'}, MaxConfig)})
		if err != nil {
			t.Fatal(err)
		}
		if g, err := s.Get(ctx, a.Slot.UUID); err != nil || len(g.Config) != MaxConfig {
			t.Fatalf("1 MiB config: %v, %d bytes", err, len(g.Config))
		}
	})

	t.Run("the secret is stored only as its hash", func(t *testing.T) {
		s, _, _, open := setup(t)
		ctx := ctxT(t)
		a, _ := s.Add(ctx, NewSlot{Config: []byte("c")})
		if _, err := s.Fetch(ctx, a.Slot.UUID, a.Secret); err != nil {
			t.Fatal(err)
		}
		items, err := open().List(ctx, "")
		if err != nil || len(items) != 2 {
			t.Fatalf("%d keys, %v", len(items), err)
		}
		for _, it := range items {
			if bytes.Contains(it.Value, []byte(a.Secret)) {
				t.Fatalf("%s holds the secret", it.Key)
			}
		}
	})

	t.Run("fetch refusals", func(t *testing.T) {
		s, _, clk, _ := setup(t)
		ctx := ctxT(t)
		a, _ := s.Add(ctx, NewSlot{Config: []byte("cfg"), TTL: 10 * time.Minute})
		d, _ := s.Add(ctx, NewSlot{Dynamic: true})
		got, err := s.Fetch(ctx, a.Slot.UUID, a.Secret)
		if err != nil || string(got.Config) != "cfg" || got.State != Spent || got.Used != 1 || !got.Assigned.Equal(clk.now()) {
			t.Fatalf("fetch: %v %+v", err, got)
		}
		exp, _ := s.Add(ctx, NewSlot{TTL: 10 * time.Minute})
		for _, tc := range []struct {
			name, uuid, secret string
			want               error
		}{
			{"spent", a.Slot.UUID, a.Secret, ErrSpent},
			{"unknown", "00000000-0000-4000-8000-000000000000", a.Secret, ErrUnknown},
			{"wrong secret", exp.Slot.UUID, a.Secret, ErrWrongSecret},
			{"wrong secret on a spent slot", a.Slot.UUID, exp.Secret, ErrWrongSecret},
			{"dynamic, not assigned", d.Slot.UUID, d.Secret, ErrUnassigned},
		} {
			if _, err := s.Fetch(ctx, tc.uuid, tc.secret); !errors.Is(err, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			}
		}
		clk.advance(10*time.Minute - time.Nanosecond)
		if g, _ := s.Get(ctx, exp.Slot.UUID); g.Expired(clk.now()) {
			t.Fatal("expired early")
		}
		clk.advance(time.Nanosecond)
		if _, err := s.Fetch(ctx, exp.Slot.UUID, exp.Secret); !errors.Is(err, ErrExpired) {
			t.Fatalf("at expiry: %v, want ErrExpired", err)
		}
		if g, _ := s.Get(ctx, exp.Slot.UUID); g.Used != 0 || !g.Expired(clk.now()) {
			t.Fatalf("a refused fetch changed the slot: %+v", g)
		}
	})

	t.Run("uses", func(t *testing.T) {
		s, _, clk, _ := setup(t)
		ctx := ctxT(t)
		three, _ := s.Add(ctx, NewSlot{Uses: 3})
		for i := 1; i <= 3; i++ {
			g, err := s.Fetch(ctx, three.Slot.UUID, three.Secret)
			want := Assigned
			if i == 3 {
				want = Spent
			}
			if err != nil || g.Used != i || g.State != want {
				t.Fatalf("fetch %d: %v %+v", i, err, g)
			}
		}
		if _, err := s.Fetch(ctx, three.Slot.UUID, three.Secret); !errors.Is(err, ErrSpent) {
			t.Fatalf("fourth fetch: %v", err)
		}
		re, _ := s.Add(ctx, NewSlot{Reusable: true})
		for i := range 10 {
			if g, err := s.Fetch(ctx, re.Slot.UUID, re.Secret); err != nil || g.State != Assigned {
				t.Fatalf("reusable fetch %d: %v %+v", i, err, g)
			}
		}
		clk.advance(time.Hour)
		if _, err := s.Fetch(ctx, re.Slot.UUID, re.Secret); !errors.Is(err, ErrExpired) {
			t.Fatalf("reusable after expiry: %v", err)
		}
	})

	t.Run("a fetch retried with its key is answered again", func(t *testing.T) {
		s, all, _, _ := setup(t)
		contractFetchKey(t, s, all[len(all)-1])
	})
	t.Run("a final report spends a counted slot", func(t *testing.T) {
		s, _, _, _ := setup(t)
		contractFinalReport(t, s)
	})
	t.Run("a keyless report pins nothing", func(t *testing.T) {
		s, _, _, _ := setup(t)
		contractKeylessReport(t, s)
	})

	t.Run("a single-use secret fetched 20 times at once", func(t *testing.T) {
		s, all, _, _ := setup(t)
		ctx := ctxT(t)
		a, _ := s.Add(ctx, NewSlot{})
		var ok, spent atomic.Int32
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				_, err := all[i%len(all)].Fetch(ctx, a.Slot.UUID, a.Secret)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrSpent):
					spent.Add(1)
				default:
					t.Errorf("fetch: %v", err)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 1 || spent.Load() != 19 {
			t.Fatalf("%d fetches succeeded, %d spent; want 1 and 19", ok.Load(), spent.Load())
		}
		if g, _ := s.Get(ctx, a.Slot.UUID); g.Used != 1 {
			t.Fatalf("used %d", g.Used)
		}
	})

	t.Run("50 callers race for 40 dynamic slots", func(t *testing.T) {
		s, all, _, _ := setup(t)
		ctx := ctxT(t)
		pool := newSecret()
		want := map[string]bool{}
		for i := range 40 {
			a, err := s.Add(ctx, NewSlot{Dynamic: true, Secret: pool, Config: fmt.Appendf(nil, "slot %d", i)})
			if err != nil {
				t.Fatal(err)
			}
			want[a.Slot.UUID] = true
		}
		// Neither a static slot with the same secret nor another pool's
		// slot is handed out.
		static, _ := s.Add(ctx, NewSlot{Secret: pool})
		other, _ := s.Add(ctx, NewSlot{Dynamic: true})
		var mu sync.Mutex
		got := map[string]int{}
		var none atomic.Int32
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Go(func() {
				sl, err := all[i%len(all)].AssignDynamic(ctx, pool)
				switch {
				case err == nil:
					if sl.Config == nil || sl.State != Spent {
						t.Errorf("assigned %+v", sl)
					}
					mu.Lock()
					got[sl.UUID]++
					mu.Unlock()
				case errors.Is(err, ErrNoFreeSlot):
					none.Add(1)
				default:
					t.Errorf("assign: %v", err)
				}
			})
		}
		wg.Wait()
		if len(got) != 40 || none.Load() != 10 {
			t.Fatalf("%d distinct slots assigned, %d refused; want 40 and 10", len(got), none.Load())
		}
		for u, n := range got {
			if n != 1 || !want[u] {
				t.Fatalf("slot %s assigned %d times (in the pool: %v)", u, n, want[u])
			}
		}
		for _, u := range []string{static.Slot.UUID, other.Slot.UUID} {
			if g, _ := s.Get(ctx, u); g.Used != 0 {
				t.Fatalf("slot %s outside the pool was handed out", u)
			}
		}
		if _, err := s.AssignDynamic(ctx, newSecret()); !errors.Is(err, ErrWrongSecret) {
			t.Fatalf("unknown pool secret: %v", err)
		}
		// An assigned slot is then the node's: its fetch and report go by uuid.
		for u := range got {
			if _, err := s.Check(ctx, u, pool); err != nil {
				t.Fatal(err)
			}
			break
		}
	})

	t.Run("dynamic slots are handed out oldest first and not after expiry", func(t *testing.T) {
		s, _, clk, _ := setup(t)
		ctx := ctxT(t)
		pool := newSecret()
		old, _ := s.Add(ctx, NewSlot{Dynamic: true, Secret: pool, TTL: time.Minute})
		clk.advance(time.Second)
		young, _ := s.Add(ctx, NewSlot{Dynamic: true, Secret: pool})
		clk.advance(time.Minute)
		g, err := s.AssignDynamic(ctx, pool)
		if err != nil || g.UUID != young.Slot.UUID {
			t.Fatalf("got %v %s, want the unexpired %s (not %s)", err, g.UUID, young.Slot.UUID, old.Slot.UUID)
		}
		if _, err := s.AssignDynamic(ctx, pool); !errors.Is(err, ErrNoFreeSlot) {
			t.Fatalf("pool exhausted: %v", err)
		}
	})

	t.Run("report pins the root key", func(t *testing.T) {
		s, _, clk, _ := setup(t)
		ctx := ctxT(t)
		a, _ := s.Add(ctx, NewSlot{})
		key := rootKey(t, "root@node3")
		rep := Report{Status: "joined", Params: map[string]string{"os": "debian"}, Peer: "192.0.2.7:40000", ClaimedAddr: "10.0.0.7", RootKey: key}
		if _, err := s.Report(ctx, a.Slot.UUID, a.Secret, rep); !errors.Is(err, ErrNotFetched) {
			t.Fatalf("report before fetch: %v", err)
		}
		if _, err := s.Fetch(ctx, a.Slot.UUID, a.Secret); err != nil {
			t.Fatal(err)
		}
		clk.advance(2 * time.Hour) // a report is not bound to the secret's expiry
		g, err := s.Report(ctx, a.Slot.UUID, a.Secret, rep)
		if err != nil {
			t.Fatal(err)
		}
		norm := strings.Join(strings.Fields(key)[:2], " ")
		if g.PinnedKey != norm || !g.LastSeen.Equal(clk.now()) || g.Report.Peer != "192.0.2.7:40000" ||
			g.Report.ClaimedAddr != "10.0.0.7" || g.Report.Status != "joined" || g.Report.Params["os"] != "debian" {
			t.Fatalf("after report: %+v %+v", g, g.Report)
		}
		rep.RootKey = norm + " another-comment"
		rep.Status = "running"
		if g, err = s.Report(ctx, a.Slot.UUID, a.Secret, rep); err != nil || g.Report.Status != "running" {
			t.Fatalf("same key, new comment: %v", err)
		}
		rep.RootKey = rootKey(t, "root@node3")
		rep.Status = "evil"
		if _, err := s.Report(ctx, a.Slot.UUID, a.Secret, rep); !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("another key: %v", err)
		}
		if _, err := s.Report(ctx, a.Slot.UUID, newSecret(), rep); !errors.Is(err, ErrWrongSecret) {
			t.Fatalf("wrong secret: %v", err)
		}
		if g, _ := s.Get(ctx, a.Slot.UUID); g.Report.Status != "running" || g.PinnedKey != norm {
			t.Fatalf("a refused report changed the slot: %+v", g.Report)
		}
		for _, tc := range []struct {
			name string
			r    Report
			want string
		}{
			{"no key", Report{}, "invalid: report: root_key: missing"},
			{"not a key", Report{RootKey: "hello"}, `invalid: report: root_key: not an OpenSSH public key ("type base64 [comment]")`},
			{"type mismatch", Report{RootKey: "ssh-rsa " + strings.Fields(key)[1]}, `invalid: report: root_key: key data does not match its type "ssh-rsa"`},
			{"status", Report{RootKey: key, Status: strings.Repeat("s", MaxStatus+1)}, "invalid: report: status: 1025 bytes, at most 1024"},
		} {
			if _, err := s.Report(ctx, a.Slot.UUID, a.Secret, tc.r); err == nil || err.Error() != tc.want {
				t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
			}
		}
	})

	t.Run("two first reports with different keys race: one pins", func(t *testing.T) {
		s, all, _, _ := setup(t)
		ctx := ctxT(t)
		a, _ := s.Add(ctx, NewSlot{})
		if _, err := s.Fetch(ctx, a.Slot.UUID, a.Secret); err != nil {
			t.Fatal(err)
		}
		var ok, refused atomic.Int32
		var wg sync.WaitGroup
		for i := range 10 {
			k := rootKey(t, "")
			wg.Go(func() {
				_, err := all[i%len(all)].Report(ctx, a.Slot.UUID, a.Secret, Report{RootKey: k})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrKeyMismatch):
					refused.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 1 || refused.Load() != 9 {
			t.Fatalf("%d reports taken, %d refused; want 1 and 9", ok.Load(), refused.Load())
		}
	})

	t.Run("remove and remove-stale", func(t *testing.T) {
		s, all, clk, _ := setup(t)
		ctx := ctxT(t)
		var old []Added
		for range 5 {
			a, _ := s.Add(ctx, NewSlot{TTL: 3 * time.Hour})
			old = append(old, a)
		}
		clk.advance(time.Hour)
		for range 3 {
			_, _ = s.Add(ctx, NewSlot{})
		}
		// Two of the old ones report now: they are fresh by their report.
		for _, a := range old[:2] {
			if _, err := s.Fetch(ctx, a.Slot.UUID, a.Secret); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Report(ctx, a.Slot.UUID, a.Secret, Report{RootKey: rootKey(t, "")}); err != nil {
				t.Fatal(err)
			}
		}
		clk.advance(30 * time.Minute)
		if n, err := s.RemoveStale(ctx, 2*time.Hour); err != nil || n != 0 {
			t.Fatalf("nothing older than 2h: removed %d, %v", n, err)
		}
		// Two removers at once count each slot once.
		var total atomic.Int32
		var wg sync.WaitGroup
		for _, st := range []*Store{all[0], all[len(all)-1]} {
			wg.Go(func() {
				n, err := st.RemoveStale(ctx, time.Hour)
				if err != nil {
					t.Error(err)
				}
				total.Add(int32(n))
			})
		}
		wg.Wait()
		if total.Load() != 3 {
			t.Fatalf("removed %d, want the 3 never seen for 1h30", total.Load())
		}
		list, _ := s.List(ctx)
		if len(list) != 5 {
			t.Fatalf("%d slots left, want 5", len(list))
		}
		if err := s.Remove(ctx, old[0].Slot.UUID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, old[0].Slot.UUID); !errors.Is(err, ErrUnknown) {
			t.Fatalf("after remove: %v", err)
		}
		if _, _, err := s.WatchConfig(ctx, old[0].Slot.UUID, 0); !errors.Is(err, ErrUnknown) {
			t.Fatalf("its config: %v", err)
		}
		if err := s.Remove(ctx, old[0].Slot.UUID); !errors.Is(err, ErrUnknown) {
			t.Fatalf("second remove: %v", err)
		}
		if _, err := s.Fetch(ctx, old[2].Slot.UUID, old[2].Secret); !errors.Is(err, ErrUnknown) {
			t.Fatalf("fetch of a removed stale slot: %v", err)
		}
	})

	t.Run("sweep removes expired slots never used, after the grace", func(t *testing.T) {
		s, _, clk, _ := setup(t)
		ctx := ctxT(t)
		unused, _ := s.Add(ctx, NewSlot{TTL: time.Minute})
		used, _ := s.Add(ctx, NewSlot{TTL: time.Minute})
		if _, err := s.Fetch(ctx, used.Slot.UUID, used.Secret); err != nil {
			t.Fatal(err)
		}
		clk.advance(time.Minute + DefaultGrace - time.Second)
		if n, err := s.Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("within the grace: %d %v", n, err)
		}
		if _, err := s.Fetch(ctx, unused.Slot.UUID, unused.Secret); !errors.Is(err, ErrExpired) {
			t.Fatalf("within the grace: %v, want ErrExpired", err)
		}
		clk.advance(time.Second)
		if n, err := s.Sweep(ctx); err != nil || n != 1 {
			t.Fatalf("after the grace: %d %v", n, err)
		}
		if _, err := s.Get(ctx, used.Slot.UUID); err != nil {
			t.Fatalf("the used slot: %v", err)
		}
	})

	t.Run("set-config and watch", func(t *testing.T) {
		s, all, _, _ := setup(t)
		ctx := ctxT(t)
		a, _ := s.Add(ctx, NewSlot{Config: []byte("v1")})
		if text, rev, err := s.WatchConfig(ctx, a.Slot.UUID, 0); err != nil || rev != 1 || string(text) != "v1" {
			t.Fatalf("watch after 0: %q %d %v", text, rev, err)
		}
		type res struct {
			text []byte
			rev  int64
			err  error
		}
		done := make(chan res, 1)
		started := make(chan struct{})
		w := all[len(all)-1]
		go func() {
			close(started)
			text, rev, err := w.WatchConfig(ctx, a.Slot.UUID, 1)
			done <- res{text, rev, err}
		}()
		<-started
		// Other writes to the slot do not end the watch.
		if _, err := s.Fetch(ctx, a.Slot.UUID, a.Secret); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Report(ctx, a.Slot.UUID, a.Secret, Report{RootKey: rootKey(t, "")}); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-done:
			t.Fatalf("watch ended before set-config: %+v", r)
		case <-time.After(200 * time.Millisecond):
		}
		rev, err := s.SetConfig(ctx, a.Slot.UUID, []byte("v2"))
		if err != nil || rev != 2 {
			t.Fatalf("set-config: %d %v", rev, err)
		}
		r := <-done
		if r.err != nil || r.rev != 2 || string(r.text) != "v2" {
			t.Fatalf("watch: %+v", r)
		}
		if rev, _ := s.SetConfig(ctx, a.Slot.UUID, nil); rev != 3 {
			t.Fatalf("third revision %d", rev)
		}
		if _, err := s.SetConfig(ctx, a.Slot.UUID, make([]byte, MaxConfig+1)); !errors.Is(err, ErrInvalid) {
			t.Fatalf("oversized: %v", err)
		}
		if _, err := s.SetConfig(ctx, "00000000-0000-4000-8000-000000000000", nil); !errors.Is(err, ErrUnknown) {
			t.Fatalf("unknown: %v", err)
		}
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if _, _, err := s.WatchConfig(cctx, a.Slot.UUID, 3); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("watch cancelled: %v", err)
		}
	})

	t.Run("concurrent set-config: every revision once", func(t *testing.T) {
		s, all, _, _ := setup(t)
		ctx := ctxT(t)
		a, _ := s.Add(ctx, NewSlot{})
		var mu sync.Mutex
		revs := map[int64]bool{}
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				rev, err := all[i%len(all)].SetConfig(ctx, a.Slot.UUID, fmt.Appendf(nil, "%d", i))
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				revs[rev] = true
				mu.Unlock()
			})
		}
		wg.Wait()
		for r := int64(2); r <= 21; r++ {
			if !revs[r] {
				t.Fatalf("revisions %v: %d missing", revs, r)
			}
		}
	})
}
