package registrar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nodejoin/nodejoin/internal/advert"
	"github.com/nodejoin/nodejoin/internal/master/slotstore"
)

// Mode is how far the registrar accepts by itself (the seed's three).
type Mode string

// Modes; Disabled is the default.
const (
	Disabled     Mode = "disabled"      // keep and list; register only what the admin accepts
	LocalNetwork Mode = "local-network" // auto-accept requests from a local subnet (with a gate)
	Anything     Mode = "anything"      // auto-accept from anywhere (with a gate)
)

// ParseMode reads --register-mode.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Disabled, LocalNetwork, Anything:
		return m, nil
	}
	return "", fmt.Errorf("%q is not a mode (disabled, local-network, anything)", s)
}

// Errors of the registrar's operations.
var (
	ErrUnknown        = errors.New("no registration request of that name")
	ErrSecretMismatch = errors.New("a request of that name is kept with another request secret")
	ErrRegistered     = errors.New("already registered")
	ErrBadToken       = errors.New("the registration token is unknown, expired or used up")
	ErrInvalid        = errors.New("invalid")
	ErrFull           = errors.New("the registrar keeps as many records as it may; reject or accept some first")
)

// DefaultMaxRecords bounds the records kept: anyone on the link can send
// adverts and requests under new names.
const DefaultMaxRecords = 10000

// Slots is what the registrar needs of the slot store: a registration
// becomes a slot that the machine fetches with its own request secret.
type Slots interface {
	Add(ctx context.Context, n slotstore.NewSlot) (slotstore.Added, error)
	Get(ctx context.Context, uuid string) (slotstore.Slot, error)
}

// Event is one audit line of the registrar's.
type Event struct {
	Event, Node, Peer, Outcome, Reason, Slot string
}

// Options configure a Registrar.
type Options struct {
	Backend slotstore.Backend
	Slots   Slots
	// Master is the master's name: a parent that needs no record.
	Master string
	// Recorded tells whether the cluster already has the node (a parent
	// added by node-add needs no record either).
	Recorded func(name string) (bool, error)
	// ClusterHostKeys returns the fingerprints of the cluster's SSH host
	// keys: a node that joined has them (Ganeti gives every node the
	// cluster's host keys), so its advert after the join carries one.
	ClusterHostKeys func() []string
	Mode            Mode
	// Subnets are local besides the subnets of the interfaces (--subnet).
	Subnets []netip.Prefix
	// InterfaceNets returns the subnets of the interface holding an
	// address (0: InterfaceNets, the machine's).
	InterfaceNets func(netip.Addr) []netip.Prefix
	// PendingTimeout: a record whose parent nobody knows becomes blocked
	// after this long (0: 10 minutes).
	PendingTimeout time.Duration
	// SlotTTL is how long an accepted machine has to fetch (0: 1 hour).
	SlotTTL time.Duration
	// Backoff is the first wait after a failed registration; it doubles
	// to at most 32 times itself (0: 30 seconds).
	Backoff time.Duration
	// Every is how often Run reconciles without a kick (0: 2 seconds).
	Every time.Duration
	// MaxRecords bounds the records (0: DefaultMaxRecords); a sighting of
	// a new name beyond it is refused with ErrFull.
	MaxRecords int
	Now        func() time.Time
	Log        *slog.Logger
	Audit      func(Event)
}

// Registrar keeps the registration records and moves them along.
type Registrar struct {
	o    Options
	b    slotstore.Backend
	kick chan struct{}
	// records is the number of records as the last pass counted them,
	// plus those made since: a bound that costs no listing per sighting
	// (several replicas may each add a few beyond it).
	records atomic.Int64
}

// New returns a Registrar; Run moves its records along.
func New(o Options) (*Registrar, error) {
	if o.Backend == nil || o.Slots == nil {
		return nil, errors.New("registrar: no store")
	}
	if o.Mode == "" {
		o.Mode = Disabled
	}
	if _, err := ParseMode(string(o.Mode)); err != nil {
		return nil, err
	}
	if o.PendingTimeout <= 0 {
		o.PendingTimeout = 10 * time.Minute
	}
	if o.SlotTTL <= 0 {
		o.SlotTTL = time.Hour
	}
	if o.Backoff <= 0 {
		o.Backoff = 30 * time.Second
	}
	if o.Every <= 0 {
		o.Every = 2 * time.Second
	}
	if o.MaxRecords <= 0 {
		o.MaxRecords = DefaultMaxRecords
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Audit == nil {
		o.Audit = func(Event) {}
	}
	if o.InterfaceNets == nil {
		o.InterfaceNets = InterfaceNets
	}
	if o.Recorded == nil {
		o.Recorded = func(string) (bool, error) { return false, nil }
	}
	if o.ClusterHostKeys == nil {
		o.ClusterHostKeys = func() []string { return nil }
	}
	g := &Registrar{o: o, b: o.Backend, kick: make(chan struct{}, 1)}
	items, err := g.b.List(context.Background(), recordPrefix)
	if err != nil {
		return nil, fmt.Errorf("registrar: reading the records: %w", err)
	}
	g.records.Store(int64(len(items)))
	return g, nil
}

// Mode is the registrar's mode.
func (g *Registrar) Mode() Mode { return g.o.Mode }

func (g *Registrar) now() time.Time { return g.o.Now().UTC() }

// Kick asks Run for a pass now.
func (g *Registrar) Kick() {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// Run reconciles every record until ctx ends: at every kick (a sighting,
// an admin change) and every Options.Every.
func (g *Registrar) Run(ctx context.Context) {
	t := time.NewTicker(g.o.Every)
	defer t.Stop()
	for {
		if err := g.Reconcile(ctx); err != nil && ctx.Err() == nil {
			g.o.Log.Warn("registrar pass", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-g.kick:
		}
	}
}

// update reads the record of name and commits what change returns (nil:
// no write), again on a conflict (another registrar, a request at the
// same time) or a backend that did not answer: every change is decided
// from the record as it is now, so doing it again after an unknown
// outcome does nothing twice.
func (g *Registrar) update(ctx context.Context, name string, change func(r *Record, exists bool) (*Record, []slotstore.Op, error)) (*Record, error) {
	var down time.Time
	for range 200 {
		it, err := g.b.Get(ctx, recordKey(name))
		if err != nil {
			if !g.wait(ctx, err, &down) {
				return nil, err
			}
			continue
		}
		var r *Record
		if it.Rev != 0 {
			if r, err = decodeRecord(it); err != nil {
				return nil, err
			}
		}
		nr, extra, err := change(r, r != nil)
		if err != nil || nr == nil {
			return r, err
		}
		ops := append([]slotstore.Op{{Key: recordKey(name), Rev: it.Rev, Value: encode(nr)}}, extra...)
		err = g.b.Commit(ctx, ops...)
		if err == nil {
			g.Kick()
			return nr, nil
		}
		if !errors.Is(err, slotstore.ErrConflict) && !g.wait(ctx, err, &down) {
			return nil, err
		}
	}
	return nil, slotstore.ErrContended
}

// wait tells whether err is worth a retry: an unavailable backend for at
// most 15 seconds.
func (g *Registrar) wait(ctx context.Context, err error, down *time.Time) bool {
	if !errors.Is(err, slotstore.ErrUnavailable) || ctx.Err() != nil {
		return false
	}
	if down.IsZero() {
		*down = time.Now()
	} else if time.Since(*down) > 15*time.Second {
		return false
	}
	t := time.NewTimer(100 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return true
}

// Sighting is an advert browsed or a request received.
type Sighting struct {
	Source string // SourceMDNS, SourceRequest
	advert.Advert
	Addr      string
	Interface string
	// Local: the request came from a subnet of the interface it arrived
	// on, or from one of Options.Subnets.
	Local         bool
	SecretHash    string
	HostKeyProven bool
	Token         string // a registration token presented with a request
	Withdrawn     bool   // the advert's goodbye
}

// Observe records a sighting: a new record, or an update of the one of
// its name. A registered name seen again with the same host key is a
// no-op; with another host key the record becomes a conflict, which only
// the admin resolves.
func (g *Registrar) Observe(ctx context.Context, s Sighting) (*Record, error) {
	var tokenOps []slotstore.Op
	if s.Token != "" {
		op, err := g.useToken(ctx, s.Token)
		if err != nil {
			return nil, err
		}
		tokenOps = []slotstore.Op{op}
	}
	var ev *Event
	created := false
	r, err := g.update(ctx, s.Name, func(r *Record, exists bool) (*Record, []slotstore.Op, error) {
		ev, created = nil, false
		now := g.now()
		if !exists {
			if s.Withdrawn {
				return nil, nil, nil
			}
			if g.records.Load() >= int64(g.o.MaxRecords) {
				return nil, nil, ErrFull
			}
			created = true
			r = &Record{Name: s.Name, State: Discovered, First: now, Changed: now}
			r.Role, r.Cluster, r.Parent, r.HostKey = s.Role, s.Cluster, s.Parent, s.HostKey
			g.merge(r, s, now)
			ev = &Event{Event: "discover", Node: s.Name, Peer: s.Addr, Outcome: "ok", Reason: s.Source}
			return r, tokenOps, nil
		}
		switch {
		case s.Withdrawn:
			if r.Withdrawn {
				return nil, nil, nil
			}
			r.Withdrawn, r.Seen = true, now
			return r, nil, nil
		case r.State == Rejected:
			return nil, nil, nil
		case s.HostKey != r.HostKey && (r.State == Registered || r.State == Registering) && slices.Contains(g.o.ClusterHostKeys(), s.HostKey):
			// the machine joined: it has the cluster's host keys now; the
			// same machine, nothing to write
			return nil, nil, nil
		case s.HostKey != r.HostKey:
			if r.State == Conflict && r.ConflictKey == s.HostKey {
				return nil, nil, nil
			}
			r.State, r.ConflictKey, r.Changed = Conflict, s.HostKey, now
			r.Reason = fmt.Sprintf("host key %s claimed; %s recorded", s.HostKey, r.HostKey)
			ev = &Event{Event: "conflict", Node: s.Name, Peer: s.Addr, Outcome: "refused", Reason: r.Reason}
			return r, nil, nil
		case r.State == Registered, r.State == Conflict:
			return nil, nil, nil
		}
		if s.SecretHash != "" && r.SecretHash != "" && s.SecretHash != r.SecretHash && !s.HostKeyProven {
			return nil, nil, ErrSecretMismatch
		}
		before := *r
		before.Seen = time.Time{}
		g.merge(r, s, now)
		if r.State != Registering {
			r.Parent = s.Parent
		}
		after := *r
		after.Seen = time.Time{}
		if s.Source == SourceMDNS && string(encode(&before)) == string(encode(&after)) {
			// a repeated advert: nothing new but the time; no write
			return nil, nil, nil
		}
		return r, tokenOps, nil
	})
	if err == nil && created {
		g.records.Add(1)
	}
	if err == nil && ev != nil {
		g.o.Audit(*ev)
	}
	return r, err
}

// merge takes what a sighting adds to its record.
func (g *Registrar) merge(r *Record, s Sighting, now time.Time) {
	r.addSource(s.Source)
	r.Seen = now
	switch s.Source {
	case SourceMDNS:
		r.AdvertAddr, r.Interface, r.AdvertState, r.Withdrawn = s.Addr, s.Interface, s.State, false
	case SourceRequest:
		r.RequestAddr, r.Local = s.Addr, s.Local
		if s.SecretHash != "" {
			r.SecretHash = s.SecretHash
		}
		if s.HostKeyProven {
			r.HostKeyProven = true
		}
		if s.Token != "" {
			r.Token = true
		}
	}
}

// Get returns the record of name.
func (g *Registrar) Get(ctx context.Context, name string) (*Record, error) {
	it, err := g.b.Get(ctx, recordKey(name))
	if err != nil {
		return nil, err
	}
	if it.Rev == 0 {
		return nil, ErrUnknown
	}
	return decodeRecord(it)
}

// Watch returns once the record of name changed from the one read, or
// ctx ends (a node's long poll).
func (g *Registrar) Watch(ctx context.Context, name string) error {
	it, err := g.b.Get(ctx, recordKey(name))
	if err != nil {
		return err
	}
	return g.b.Watch(ctx, recordKey(name), it.Rev)
}

// List returns every record, by name.
func (g *Registrar) List(ctx context.Context) ([]*Record, error) {
	items, err := g.b.List(ctx, recordPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]*Record, 0, len(items))
	for _, it := range items {
		r, err := decodeRecord(it)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Accept is the admin's `requests accept NAME`: the record goes on (after
// its parent). A conflict accepted takes the new host key: the machine
// that claimed it asks again with its own request.
func (g *Registrar) Accept(ctx context.Context, name string) (*Record, error) {
	r, err := g.update(ctx, name, func(r *Record, exists bool) (*Record, []slotstore.Op, error) {
		if !exists {
			return nil, nil, ErrUnknown
		}
		now := g.now()
		switch r.State {
		case Registered:
			return nil, nil, ErrRegistered
		case Registering:
			return nil, nil, nil
		case Conflict:
			r.HostKey, r.ConflictKey, r.SecretHash, r.HostKeyProven, r.Token, r.Slot = r.ConflictKey, "", "", false, false, ""
			r.Sources, r.RequestAddr, r.Local = nil, "", false
		}
		if r.AdminAccepted && r.State != Rejected && r.State != Conflict {
			return nil, nil, nil
		}
		r.AdminAccepted, r.State, r.Reason, r.Changed = true, Discovered, "", now
		return r, nil, nil
	})
	if err == nil {
		g.o.Audit(Event{Event: "accept", Node: name, Peer: "admin", Outcome: "ok"})
	}
	return r, err
}

// Reject is the admin's `requests reject NAME`: the record stays, as
// rejected, and later adverts and requests of the name change nothing.
func (g *Registrar) Reject(ctx context.Context, name string) (*Record, error) {
	r, err := g.update(ctx, name, func(r *Record, exists bool) (*Record, []slotstore.Op, error) {
		if !exists {
			return nil, nil, ErrUnknown
		}
		if r.State == Registered {
			return nil, nil, ErrRegistered
		}
		if r.State == Rejected {
			return nil, nil, nil
		}
		r.State, r.Reason, r.AdminAccepted, r.Changed = Rejected, "rejected by the admin", false, g.now()
		return r, nil, nil
	})
	if err == nil {
		g.o.Audit(Event{Event: "reject", Node: name, Peer: "admin", Outcome: "ok"})
	}
	return r, err
}

// Forget is the admin's `requests forget NAME`: the record is deleted (a
// registered node stays in the cluster; a rejected name may ask again). A
// record registering is refused: its slot is out.
func (g *Registrar) Forget(ctx context.Context, name string) (*Record, error) {
	for range 200 {
		it, err := g.b.Get(ctx, recordKey(name))
		if err != nil {
			return nil, err
		}
		if it.Rev == 0 {
			return nil, ErrUnknown
		}
		r, err := decodeRecord(it)
		if err != nil {
			return nil, err
		}
		if r.State == Registering {
			return nil, fmt.Errorf("%w: %s is registering (slot %s): reject it or wait", ErrInvalid, name, r.Slot)
		}
		err = g.b.Commit(ctx, slotstore.Op{Key: it.Key, Rev: it.Rev, Delete: true})
		if errors.Is(err, slotstore.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		g.records.Add(-1)
		g.o.Audit(Event{Event: "forget", Node: name, Peer: "admin", Outcome: "ok"})
		return r, nil
	}
	return nil, slotstore.ErrContended
}

// Reconcile takes one step for every record that can take one.
func (g *Registrar) Reconcile(ctx context.Context) error {
	recs, err := g.List(ctx)
	if err != nil {
		return err
	}
	g.records.Store(int64(len(recs)))
	byName := make(map[string]*Record, len(recs))
	for _, r := range recs {
		byName[r.Name] = r
	}
	gate, err := g.readGate(ctx)
	if err != nil {
		return err
	}
	var errs []error
	// Parents first: a parent registered in this pass lets its children
	// go on in the same pass.
	slices.SortFunc(recs, func(a, b *Record) int { return depth(a, byName) - depth(b, byName) })
	for _, r := range recs {
		if r.settled() {
			continue
		}
		nr, err := g.step(ctx, r.Name, byName, gate)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Name, err))
			continue
		}
		if nr != nil {
			byName[r.Name] = nr
		}
	}
	return errors.Join(errs...)
}

// depth is how many known ancestors a record has (a cycle stops).
func depth(r *Record, by map[string]*Record) int {
	n := 0
	seen := map[string]bool{r.Name: true}
	for p := by[r.Parent]; p != nil && !seen[p.Name]; p = by[p.Parent] {
		seen[p.Name] = true
		n++
	}
	return n
}

// step moves one record: the decision is written first (registering, with
// the slot's uuid chosen), the slot issued after; a pass that finds a
// record registering checks its slot and issues it only if it is not
// there, under the same uuid, so a crash in between issues it once.
func (g *Registrar) step(ctx context.Context, name string, by map[string]*Record, gate gate) (*Record, error) {
	var ev *Event
	r, err := g.update(ctx, name, func(r *Record, exists bool) (*Record, []slotstore.Op, error) {
		ev = nil
		if !exists || r.settled() || r.State == Registering {
			return nil, nil, nil
		}
		now := g.now()
		if r.State == Failed && now.Before(r.NextTry) {
			return nil, nil, nil
		}
		state, reason := g.decide(r, by, gate, now)
		if state == Registering {
			r.State, r.Reason, r.Changed = Registering, "", now
			r.Slot, r.Issued = slotstore.NewUUID(), false
			r.Attempts++
			r.AcceptedBy = reason
			ev = &Event{Event: "accept", Node: r.Name, Outcome: "ok", Reason: reason, Slot: r.Slot}
			return r, nil, nil
		}
		if state == r.State && reason == r.Reason {
			return nil, nil, nil
		}
		r.State, r.Reason, r.Changed = state, reason, now
		return r, nil, nil
	})
	if err != nil {
		return nil, err
	}
	if ev != nil {
		g.o.Audit(*ev)
	}
	if r != nil && r.State == Registering {
		return g.check(ctx, r)
	}
	return r, nil
}

// decide says where a record that is not yet registering goes: Registering
// (with the acceptance's name as reason), or the state it waits in and
// why.
func (g *Registrar) decide(r *Record, by map[string]*Record, gate gate, now time.Time) (State, string) {
	if r.Role != advert.RoleNode && r.Role != advert.RoleMaster {
		return Discovered, fmt.Sprintf("role %q is not registered", r.Role)
	}
	if state, reason := g.parent(r, by, now); state != "" {
		return state, reason
	}
	ok, by2, why := g.trusted(r, gate)
	if !ok {
		return Discovered, why
	}
	if r.SecretHash == "" {
		return Discovered, "accepted (" + by2 + "); waiting for the machine's registration request (node-join --register)"
	}
	return Registering, by2
}

// parent returns "" when the record's parent is registered (or needs no
// record); else pending or blocked and why.
func (g *Registrar) parent(r *Record, by map[string]*Record, now time.Time) (State, string) {
	p := r.Parent
	if p == "" || p == g.o.Master {
		return "", ""
	}
	chain := []string{r.Name}
	for cur := p; cur != "" && cur != g.o.Master; {
		if slices.Contains(chain, cur) {
			return Blocked, "parent cycle: " + strings.Join(append(chain, cur), " → ")
		}
		chain = append(chain, cur)
		pr := by[cur]
		if pr == nil {
			break
		}
		cur = pr.Parent
	}
	if pr := by[p]; pr != nil && pr.State == Registered {
		return "", ""
	}
	if ok, err := g.o.Recorded(p); err == nil && ok {
		return "", ""
	}
	if by[p] == nil && now.Sub(r.First) > g.o.PendingTimeout {
		return Blocked, fmt.Sprintf("parent %s unknown for more than %s", p, g.o.PendingTimeout)
	}
	return Pending, "waiting for parent " + p
}

// check looks at the slot of a registering record: issues it if it is not
// there, and moves the record on by what the machine reported.
func (g *Registrar) check(ctx context.Context, r *Record) (*Record, error) {
	slot, err := g.o.Slots.Get(ctx, r.Slot)
	if errors.Is(err, slotstore.ErrUnknown) {
		_, err = g.o.Slots.Add(ctx, slotstore.NewSlot{UUID: r.Slot, NodeName: r.Name, SecretHash: r.SecretHash,
			Uses: 2, TTL: g.o.SlotTTL, Params: map[string]string{"registration": r.Name}})
		if err != nil && !errors.Is(err, slotstore.ErrExists) {
			return nil, fmt.Errorf("issuing the slot: %w", err)
		}
		if err == nil {
			g.o.Audit(Event{Event: "register", Node: r.Name, Outcome: "ok", Slot: r.Slot, Peer: r.RequestAddr})
		}
		return g.issued(ctx, r)
	}
	if err != nil {
		return nil, err
	}
	if !r.Issued {
		if r, err = g.issued(ctx, r); err != nil {
			return nil, err
		}
	}
	now := g.now()
	var state State
	var reason string
	switch {
	case slot.Report != nil && slot.Report.Status == "joined":
		state = Registered
	case slot.Report != nil && slot.Report.Status == "failed":
		state, reason = Failed, "the machine reported failed"
		if e := slot.Report.Params["error"]; e != "" {
			reason += ": " + clip(e)
		}
	case slot.Used == 0 && slot.Expired(now):
		state, reason = Failed, "the slot expired before the machine fetched it"
	default:
		return r, nil
	}
	var ev *Event
	nr, err := g.update(ctx, r.Name, func(cur *Record, exists bool) (*Record, []slotstore.Op, error) {
		ev = nil
		if !exists || cur.State != Registering || cur.Slot != r.Slot {
			return nil, nil, nil
		}
		cur.State, cur.Reason, cur.Changed = state, reason, now
		if state == Failed {
			cur.NextTry = now.Add(g.backoff(cur.Attempts))
		}
		ev = &Event{Event: string(state), Node: cur.Name, Outcome: "ok", Slot: cur.Slot, Reason: reason}
		return cur, nil, nil
	})
	if err == nil && ev != nil {
		g.o.Audit(*ev)
	}
	return nr, err
}

// issued records that r's slot is in the store.
func (g *Registrar) issued(ctx context.Context, r *Record) (*Record, error) {
	nr, err := g.update(ctx, r.Name, func(cur *Record, exists bool) (*Record, []slotstore.Op, error) {
		if !exists || cur.State != Registering || cur.Slot != r.Slot || cur.Issued {
			return nil, nil, nil
		}
		cur.Issued = true
		return cur, nil, nil
	})
	if err != nil || nr == nil {
		return r, err
	}
	return nr, nil
}

func (g *Registrar) backoff(attempts int) time.Duration {
	d := g.o.Backoff
	for i := 1; i < attempts && d < 32*g.o.Backoff; i++ {
		d *= 2
	}
	return min(d, 32*g.o.Backoff)
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
