package registrar

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/advert"
	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/master/slotstore"
)

const (
	fpA = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
	fpB = "SHA256:DeBS0an6ReiXFmbbuNnptFQ8wOhZWvM/3HaLvbZOU3I"
)

// clock is a test clock shared by the store and the registrar.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t      *testing.T
	clock  *clock
	store  *slotstore.Store
	b      slotstore.Backend
	events []Event
	mu     sync.Mutex
	// clusterKeys are the cluster's host key fingerprints.
	clusterKeys []string
}

// backends runs f on the embedded store and on one etcd member.
func backends(t *testing.T, f func(t *testing.T, open func() slotstore.Backend)) {
	t.Run("bolt", func(t *testing.T) {
		dir := t.TempDir()
		var cur *slotstore.Bolt
		f(t, func() slotstore.Backend {
			if cur != nil {
				_ = cur.Close()
			}
			b, err := slotstore.OpenBolt(dir)
			if err != nil {
				t.Fatal(err)
			}
			cur = b
			t.Cleanup(func() { _ = b.Close() })
			return b
		})
	})
	t.Run("etcd", func(t *testing.T) {
		ep := startEtcd(t)
		prefix := "/test" + strconv.Itoa(time.Now().Nanosecond()) + "/"
		f(t, func() slotstore.Backend {
			b, err := slotstore.OpenEtcd(context.Background(), slotstore.EtcdConfig{Endpoints: []string{ep}, Prefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() })
			return b
		})
	})
}

func newEnv(t *testing.T, b slotstore.Backend) *env {
	e := &env{t: t, clock: &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}, b: b}
	e.store = slotstore.New(b, slotstore.Options{Now: e.clock.now})
	return e
}

func (e *env) registrar(mode Mode, slots Slots) *Registrar {
	e.t.Helper()
	if slots == nil {
		slots = e.store
	}
	g, err := New(Options{Backend: e.b, Slots: slots, Master: "master.example.org", Mode: mode, Now: e.clock.now,
		PendingTimeout: 10 * time.Minute, ClusterHostKeys: func() []string { return e.clusterKeys }, Audit: func(ev Event) { e.mu.Lock(); e.events = append(e.events, ev); e.mu.Unlock() }})
	if err != nil {
		e.t.Fatal(err)
	}
	return g
}

func ad(name, parent, fp string) advert.Advert {
	return advert.Advert{Role: advert.RoleNode, Cluster: "c.example.org", Name: name, Parent: parent, HostKey: fp, State: advert.Ready}
}

func secretOf(name string) string { return "secret-of-" + name + "-0123456789abcdef" }

// request is a direct request from a local address, with the host key
// proven.
func request(name, parent, fp string) Sighting {
	return Sighting{Source: SourceRequest, Advert: ad(name, parent, fp), Addr: "10.0.0.9", Local: true,
		SecretHash: slotstore.HashSecret(secretOf(name)), HostKeyProven: true}
}

func mdns(name, parent, fp string) Sighting {
	return Sighting{Source: SourceMDNS, Advert: ad(name, parent, fp), Addr: "10.0.0.9", Interface: "eth0"}
}

func (e *env) observe(g *Registrar, s Sighting) *Record {
	e.t.Helper()
	r, err := g.Observe(context.Background(), s)
	if err != nil {
		e.t.Fatalf("Observe(%s): %v", s.Name, err)
	}
	return r
}

func (e *env) reconcile(g *Registrar) {
	e.t.Helper()
	if err := g.Reconcile(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) state(g *Registrar, name string) *Record {
	e.t.Helper()
	r, err := g.Get(context.Background(), name)
	if err != nil {
		e.t.Fatalf("Get(%s): %v", name, err)
	}
	return r
}

func (e *env) slots() []slotstore.Slot {
	e.t.Helper()
	l, err := e.store.List(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

// join plays the machine: it fetches its slot with its own request secret
// and reports joined.
func (e *env) join(g *Registrar, name string) {
	e.t.Helper()
	r := e.state(g, name)
	ctx := context.Background()
	if _, err := e.store.Fetch(ctx, r.Slot, secretOf(name)); err != nil {
		e.t.Fatalf("fetching %s's slot with its request secret: %v", name, err)
	}
	if _, err := e.store.Report(ctx, r.Slot, secretOf(name), slotstore.Report{Status: "joined", Peer: "10.0.0.9",
		RootKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOZ4JPPa70SIJBMkC57XTmA3vVR303EPi7z3LAc9XB4y"}); err != nil {
		e.t.Fatal(err)
	}
}

func TestDisabledListsAndRegistersNothing(t *testing.T) {
	backends(t, func(t *testing.T, open func() slotstore.Backend) {
		e := newEnv(t, open())
		g := e.registrar(Disabled, nil)
		if _, err := g.OpenWindow(context.Background(), time.Hour); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			n := fmt.Sprintf("n%d.example.org", i)
			e.observe(g, mdns(n, "", fpA))
			e.observe(g, request(n, "", fpA))
		}
		e.reconcile(g)
		recs, _ := g.List(context.Background())
		if len(recs) != 3 {
			t.Fatalf("%d records, want 3", len(recs))
		}
		for _, r := range recs {
			if r.State != Discovered || !strings.Contains(r.Reason, "mode disabled") {
				t.Errorf("%s: %s (%s), want discovered in disabled mode", r.Name, r.State, r.Reason)
			}
		}
		if n := len(e.slots()); n != 0 {
			t.Fatalf("%d slots issued in disabled mode", n)
		}
		// The admin's accept registers one, with the machine's own secret.
		if _, err := g.Accept(context.Background(), "n1.example.org"); err != nil {
			t.Fatal(err)
		}
		e.reconcile(g)
		r := e.state(g, "n1.example.org")
		if r.State != Registering || r.AcceptedBy != ByAdmin || len(e.slots()) != 1 {
			t.Fatalf("after accept: %+v, %d slots", r, len(e.slots()))
		}
		e.join(g, "n1.example.org")
		e.reconcile(g)
		if r := e.state(g, "n1.example.org"); r.State != Registered {
			t.Fatalf("after the join: %s", r.State)
		}
	})
}

func TestTrustGates(t *testing.T) {
	backends(t, func(t *testing.T, open func() slotstore.Backend) {
		e := newEnv(t, open())
		ctx := context.Background()
		g := e.registrar(LocalNetwork, nil)
		remote := func(name string) Sighting {
			s := request(name, "", fpA)
			s.Local, s.Addr = false, "192.0.2.7"
			return s
		}
		e.observe(g, request("local.example.org", "", fpA))
		e.observe(g, remote("remote.example.org"))
		e.reconcile(g)
		if r := e.state(g, "local.example.org"); r.State != Discovered || !strings.Contains(r.Reason, "no install window") {
			t.Fatalf("local without a gate: %s (%s)", r.State, r.Reason)
		}
		if _, err := g.OpenWindow(ctx, 15*time.Minute); err != nil {
			t.Fatal(err)
		}
		e.reconcile(g)
		if r := e.state(g, "local.example.org"); r.State != Registering || r.AcceptedBy != ByWindow {
			t.Fatalf("local in the window: %s (%s)", r.State, r.Reason)
		}
		if r := e.state(g, "remote.example.org"); r.State != Discovered || !strings.Contains(r.Reason, "not a local subnet") {
			t.Fatalf("remote in the window: %s (%s)", r.State, r.Reason)
		}
		// A pre-pinned key the request proved, and a token, admit remote
		// requests; a pinned key the request did not prove does not.
		if err := g.Expect(ctx, "remote.example.org", fpA); err != nil {
			t.Fatal(err)
		}
		unproven := remote("unproven.example.org")
		unproven.HostKeyProven = false
		e.observe(g, unproven)
		if err := g.Expect(ctx, "unproven.example.org", fpA); err != nil {
			t.Fatal(err)
		}
		tok, _, err := g.NewToken(ctx, time.Hour, 1)
		if err != nil {
			t.Fatal(err)
		}
		withToken := remote("token.example.org")
		withToken.Token = tok
		e.observe(g, withToken)
		again := remote("token2.example.org")
		again.Token = tok
		if _, err := g.Observe(ctx, again); !errors.Is(err, ErrBadToken) {
			t.Fatalf("a used-up token: %v", err)
		}
		e.reconcile(g)
		for name, by := range map[string]string{"remote.example.org": ByExpectedKey, "token.example.org": ByToken} {
			if r := e.state(g, name); r.State != Registering || r.AcceptedBy != by {
				t.Errorf("%s: %s by %q (%s), want registering by %s", name, r.State, r.AcceptedBy, r.Reason, by)
			}
		}
		if r := e.state(g, "unproven.example.org"); r.State != Discovered {
			t.Errorf("unproven pinned key: %s", r.State)
		}
		// The window closes by the clock; a restarted registrar reads it.
		e.clock.add(16 * time.Minute)
		e.observe(g, request("late.example.org", "", fpB))
		g2 := e.registrar(LocalNetwork, nil)
		e.reconcile(g2)
		if r := e.state(g2, "late.example.org"); r.State != Discovered || !strings.Contains(r.Reason, "no install window") {
			t.Fatalf("after the window closed: %s (%s)", r.State, r.Reason)
		}
		if _, open, _ := g2.InstallWindow(ctx); open {
			t.Fatal("window still open")
		}
	})
}

// Repeated adverts and requests, many registrars at once (etcd: as many
// replicas): one slot per name.
func TestExactlyOnceUnderRepeats(t *testing.T) {
	backends(t, func(t *testing.T, open func() slotstore.Backend) {
		e := newEnv(t, open())
		ctx := context.Background()
		gs := []*Registrar{e.registrar(Anything, nil), e.registrar(Anything, nil), e.registrar(Anything, nil)}
		if _, err := gs[0].OpenWindow(ctx, time.Hour); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i, g := range gs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range 20 {
					for _, s := range []Sighting{mdns("a.example.org", "", fpA), request("a.example.org", "", fpA)} {
						if _, err := g.Observe(ctx, s); err != nil {
							t.Error(err)
						}
					}
					if err := g.Reconcile(ctx); err != nil {
						t.Error(i, j, err)
					}
				}
			}()
		}
		wg.Wait()
		if n := len(e.slots()); n != 1 {
			t.Fatalf("%d slots for one machine", n)
		}
		r := e.state(gs[0], "a.example.org")
		if r.Attempts != 1 || r.State != Registering {
			t.Fatalf("%+v", r)
		}
		// Registered, then seen again with the same key: no write at all.
		e.join(gs[0], "a.example.org")
		e.reconcile(gs[0])
		before, _ := e.b.Get(ctx, recordKey("a.example.org"))
		e.observe(gs[1], mdns("a.example.org", "", fpA))
		e.observe(gs[1], request("a.example.org", "", fpA))
		e.reconcile(gs[2])
		after, _ := e.b.Get(ctx, recordKey("a.example.org"))
		if before.Rev != after.Rev || len(e.slots()) != 1 {
			t.Fatalf("a registered name seen again was written (rev %d → %d), %d slots", before.Rev, after.Rev, len(e.slots()))
		}
	})
}

func TestParentBeforeChildren(t *testing.T) {
	backends(t, func(t *testing.T, open func() slotstore.Backend) {
		e := newEnv(t, open())
		g := e.registrar(Anything, nil)
		if _, err := g.OpenWindow(context.Background(), time.Hour); err != nil {
			t.Fatal(err)
		}
		kids := []string{"k1.example.org", "k2.example.org", "k3.example.org"}
		for _, k := range kids {
			e.observe(g, request(k, "rack.example.org", fpA))
		}
		e.reconcile(g)
		for _, k := range kids {
			if r := e.state(g, k); r.State != Pending || r.Reason != "waiting for parent rack.example.org" {
				t.Fatalf("%s before its parent: %s (%s)", k, r.State, r.Reason)
			}
		}
		e.observe(g, request("rack.example.org", "", fpB))
		e.reconcile(g)
		if r := e.state(g, "rack.example.org"); r.State != Registering {
			t.Fatalf("parent: %s", r.State)
		}
		for _, k := range kids {
			if r := e.state(g, k); r.State != Pending {
				t.Fatalf("%s while its parent registers: %s", k, r.State)
			}
		}
		e.join(g, "rack.example.org")
		e.reconcile(g) // the parent registered and its children accepted in one pass
		for _, k := range kids {
			if r := e.state(g, k); r.State != Registering {
				t.Fatalf("%s after its parent registered: %s (%s)", k, r.State, r.Reason)
			}
		}
		if n := len(e.slots()); n != 4 {
			t.Fatalf("%d slots", n)
		}
	})
}

func TestBlocked(t *testing.T) {
	backends(t, func(t *testing.T, open func() slotstore.Backend) {
		e := newEnv(t, open())
		g := e.registrar(Anything, nil)
		e.observe(g, request("orphan.example.org", "nobody.example.org", fpA))
		e.observe(g, request("x.example.org", "y.example.org", fpA))
		e.observe(g, request("y.example.org", "x.example.org", fpA))
		e.reconcile(g)
		if r := e.state(g, "x.example.org"); r.State != Blocked || r.Reason != "parent cycle: x.example.org → y.example.org → x.example.org" {
			t.Fatalf("cycle: %s (%s)", r.State, r.Reason)
		}
		if r := e.state(g, "orphan.example.org"); r.State != Pending {
			t.Fatalf("orphan: %s", r.State)
		}
		e.clock.add(11 * time.Minute)
		e.reconcile(g)
		if r := e.state(g, "orphan.example.org"); r.State != Blocked || !strings.Contains(r.Reason, "unknown for more than 10m0s") {
			t.Fatalf("orphan past the timeout: %s (%s)", r.State, r.Reason)
		}
		// The parent turns up: the child goes on waiting for it.
		e.observe(g, request("nobody.example.org", "", fpB))
		e.reconcile(g)
		if r := e.state(g, "orphan.example.org"); r.State != Pending {
			t.Fatalf("orphan once its parent is known: %s (%s)", r.State, r.Reason)
		}
	})
}

func TestConflict(t *testing.T) {
	backends(t, func(t *testing.T, open func() slotstore.Backend) {
		e := newEnv(t, open())
		ctx := context.Background()
		g := e.registrar(Anything, nil)
		if _, err := g.OpenWindow(ctx, time.Hour); err != nil {
			t.Fatal(err)
		}
		e.observe(g, request("n.example.org", "", fpA))
		e.reconcile(g)
		e.join(g, "n.example.org")
		e.reconcile(g)
		// Joined, the node has the cluster's host keys: its advert with
		// one of them is the same machine, not a conflict.
		const fpCluster = "SHA256:o5WMwCdfvf1duo7awTTax+ct9028MSUdFc0ZcC6MzPA"
		e.clusterKeys = []string{fpCluster}
		before, _ := e.b.Get(ctx, recordKey("n.example.org"))
		e.observe(g, mdns("n.example.org", "", fpCluster))
		if after, _ := e.b.Get(ctx, recordKey("n.example.org")); after.Rev != before.Rev {
			t.Fatal("an advert with the cluster's host key changed the registered record")
		}
		other := request("n.example.org", "", fpB)
		other.SecretHash = slotstore.HashSecret("another machine's secret, long enough")
		e.observe(g, other)
		e.reconcile(g)
		r := e.state(g, "n.example.org")
		if r.State != Conflict || r.HostKey != fpA || r.ConflictKey != fpB || !strings.Contains(r.Reason, fpA) || !strings.Contains(r.Reason, fpB) {
			t.Fatalf("%+v", r)
		}
		if n := len(e.slots()); n != 1 {
			t.Fatalf("%d slots: a conflict was registered", n)
		}
		// The admin takes the new key; the machine must ask again.
		r, err := g.Accept(ctx, "n.example.org")
		if err != nil || r.HostKey != fpB || r.SecretHash != "" || r.State != Discovered {
			t.Fatalf("accepting the conflict: %+v, %v", r, err)
		}
	})
}

// failingSlots issues nothing: the registrar dies between writing
// "registering" and issuing the slot.
type failingSlots struct{ Slots }

var errCrash = errors.New("killed")

func (f failingSlots) Add(context.Context, slotstore.NewSlot) (slotstore.Added, error) {
	return slotstore.Added{}, errCrash
}

// lostAnswer issues the slot but loses the answer: the registrar dies
// right after issuing.
type lostAnswer struct{ Slots }

func (f lostAnswer) Add(ctx context.Context, n slotstore.NewSlot) (slotstore.Added, error) {
	_, _ = f.Slots.Add(ctx, n)
	return slotstore.Added{}, errCrash
}

func TestCrashMidRegistration(t *testing.T) {
	backends(t, func(t *testing.T, open func() slotstore.Backend) {
		for _, tc := range []struct {
			name, node string
			slots      func(s Slots) Slots
		}{
			{"before the slot", "n1.example.org", func(s Slots) Slots { return failingSlots{s} }},
			{"after the slot", "n2.example.org", func(s Slots) Slots { return lostAnswer{s} }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e := newEnv(t, open())
				ctx := context.Background()
				g := e.registrar(Anything, tc.slots(e.store))
				if _, err := g.OpenWindow(ctx, time.Hour); err != nil {
					t.Fatal(err)
				}
				e.observe(g, request(tc.node, "", fpA))
				if err := g.Reconcile(ctx); !errors.Is(err, errCrash) {
					t.Fatalf("Reconcile: %v", err)
				}
				r := e.state(g, tc.node)
				if r.State != Registering || r.Slot == "" || r.Issued {
					t.Fatalf("the decision was not written before the side effect (or the slot told as issued): %+v", r)
				}
				// A new registrar over the same store (the restart).
				e2 := &env{t: t, clock: e.clock, b: open()}
				e2.store = slotstore.New(e2.b, slotstore.Options{Now: e.clock.now})
				g2 := e2.registrar(Anything, nil)
				e2.reconcile(g2)
				e2.reconcile(g2)
				var slots []slotstore.Slot
				for _, s := range e2.slots() {
					if s.NodeName == tc.node {
						slots = append(slots, s)
					}
				}
				if len(slots) != 1 || slots[0].UUID != r.Slot {
					t.Fatalf("after the restart: %d slots (%v), want exactly %s", len(slots), slots, r.Slot)
				}
				if r2 := e2.state(g2, tc.node); r2.Attempts != 1 || !r2.Issued {
					t.Fatalf("after the restart: %+v", r2)
				}
			})
		}
	})
}

func TestFailedBacksOff(t *testing.T) {
	backends(t, func(t *testing.T, open func() slotstore.Backend) {
		e := newEnv(t, open())
		ctx := context.Background()
		g := e.registrar(Anything, nil)
		if _, err := g.OpenWindow(ctx, 24*time.Hour); err != nil {
			t.Fatal(err)
		}
		e.observe(g, request("n.example.org", "", fpA))
		e.reconcile(g)
		first := e.state(g, "n.example.org").Slot
		e.clock.add(61 * time.Minute) // the slot expires unused
		e.reconcile(g)
		if r := e.state(g, "n.example.org"); r.State != Failed || !strings.Contains(r.Reason, "expired") {
			t.Fatalf("%s (%s)", r.State, r.Reason)
		}
		e.reconcile(g)
		if r := e.state(g, "n.example.org"); r.State != Failed {
			t.Fatalf("retried within the backoff: %s", r.State)
		}
		e.clock.add(31 * time.Second)
		e.reconcile(g)
		r := e.state(g, "n.example.org")
		if r.State != Registering || r.Slot == first || r.Attempts != 2 {
			t.Fatalf("after the backoff: %+v", r)
		}
	})
}

// startEtcd runs one etcd member on loopback, as joinservice's tests do.
func startEtcd(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("etcd: not found, and CI=true: tools/install-deps.sh installs etcd-server")
		}
		t.Skip("etcd: not found (Debian's etcd-server)")
	}
	client, peer := freePort(t), freePort(t)
	dir := t.TempDir()
	cu, pu := "http://127.0.0.1:"+strconv.Itoa(client), "http://127.0.0.1:"+strconv.Itoa(peer)
	log, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--name", "m1", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", cu, "--advertise-client-urls", cu,
		"--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu, "--initial-cluster", "m1="+pu)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = log.Close()
	})
	return "127.0.0.1:" + strconv.Itoa(client)
}

func freePort(t testing.TB) int {
	t.Helper()
	p, err := fixture.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A flood of new names stops at MaxRecords; known names still update.
func TestMaxRecords(t *testing.T) {
	e := newEnv(t, func() slotstore.Backend {
		b, err := slotstore.OpenBolt(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b
	}())
	g, err := New(Options{Backend: e.b, Slots: e.store, MaxRecords: 3, Now: e.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		e.observe(g, mdns(fmt.Sprintf("n%d.example.org", i), "", fpA))
	}
	if _, err := g.Observe(context.Background(), mdns("n3.example.org", "", fpA)); !errors.Is(err, ErrFull) {
		t.Fatalf("a fourth name: %v", err)
	}
	e.observe(g, request("n0.example.org", "", fpA))
	// A restarted registrar counts what is there.
	g2, err := New(Options{Backend: e.b, Slots: e.store, MaxRecords: 3, Now: e.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g2.Observe(context.Background(), mdns("n3.example.org", "", fpA)); !errors.Is(err, ErrFull) {
		t.Fatalf("a fourth name after a restart: %v", err)
	}
	// Forgetting one makes room.
	if _, err := g2.Forget(context.Background(), "n1.example.org"); err != nil {
		t.Fatal(err)
	}
	if _, err := g2.Get(context.Background(), "n1.example.org"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("forgotten: %v", err)
	}
	e.observe(g2, mdns("n3.example.org", "", fpA))
}
