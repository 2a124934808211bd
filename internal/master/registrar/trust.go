package registrar

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/nodejoin/nodejoin/internal/advert"
	"github.com/nodejoin/nodejoin/internal/master/slotstore"
)

// gate is what auto-acceptance needs besides the mode, read once a pass.
type gate struct {
	window  time.Time         // the install window's end; zero: closed
	expects map[string]string // name → the host key fingerprint the admin pinned
}

func (g *Registrar) readGate(ctx context.Context) (gate, error) {
	var out gate
	w, err := g.window(ctx)
	if err != nil {
		return out, err
	}
	if g.now().Before(w.Until) {
		out.window = w.Until
	}
	items, err := g.b.List(ctx, expectPrefix)
	if err != nil {
		return out, err
	}
	out.expects = make(map[string]string, len(items))
	for _, it := range items {
		out.expects[it.Key[len(expectPrefix):]] = string(it.Value)
	}
	return out, nil
}

// trusted says whether a record may be registered, and by what. The
// admin's accept is enough; otherwise the mode must allow it and one of
// the gates must hold: a pre-pinned host key that the request proved, a
// registration token, or (from an address the mode allows) an open
// install window. An advert alone never suffices: anyone on the link can
// send one.
func (g *Registrar) trusted(r *Record, gt gate) (bool, string, string) {
	if r.AdminAccepted {
		return true, ByAdmin, ""
	}
	if g.o.Mode == Disabled {
		return false, "", "mode disabled: waiting for `join-service requests accept " + r.Name + "`"
	}
	if fp, ok := gt.expects[r.Name]; ok {
		switch {
		case fp != r.HostKey:
			return false, "", fmt.Sprintf("host key %s is not the expected %s", r.HostKey, fp)
		case r.HostKeyProven:
			return true, ByExpectedKey, ""
		}
	}
	if r.Token {
		return true, ByToken, ""
	}
	if g.o.Mode == LocalNetwork && !r.Local {
		if r.RequestAddr == "" {
			return false, "", "no registration request yet (node-join --register)"
		}
		return false, "", fmt.Sprintf("request from %s, not a local subnet: needs a token or a pre-pinned host key", r.RequestAddr)
	}
	if !gt.window.IsZero() {
		return true, ByWindow, ""
	}
	return false, "", "no install window open, no pre-pinned host key, no token"
}

// Window is the install window as stored.
type Window struct {
	Opened time.Time `json:"opened"`
	Until  time.Time `json:"until"`
}

func (g *Registrar) window(ctx context.Context) (Window, error) {
	var w Window
	it, err := g.b.Get(ctx, windowKey)
	if err != nil || it.Rev == 0 {
		return w, err
	}
	err = json.Unmarshal(it.Value, &w)
	return w, err
}

// InstallWindow is the current install window.
func (g *Registrar) InstallWindow(ctx context.Context) (Window, bool, error) {
	w, err := g.window(ctx)
	return w, err == nil && g.now().Before(w.Until), err
}

// OpenWindow opens the install window for d from now (0 closes it). The
// window is stored, with its end: a restart keeps it, and it closes by
// the clock, not by a timer that a crash would lose.
func (g *Registrar) OpenWindow(ctx context.Context, d time.Duration) (Window, error) {
	if d < 0 || d > 7*24*time.Hour {
		return Window{}, fmt.Errorf("%w: --for: %s, want 0 to 168h", ErrInvalid, d)
	}
	now := g.now()
	w := Window{Opened: now, Until: now.Add(d)}
	if err := g.b.Commit(ctx, slotstore.Op{Key: windowKey, Rev: slotstore.AnyRev, Value: encode(w)}); err != nil {
		return Window{}, err
	}
	g.o.Audit(Event{Event: "install-window", Peer: "admin", Outcome: "ok", Reason: "open until " + w.Until.Format(time.RFC3339)})
	g.Kick()
	return w, nil
}

// Expect pre-pins NAME's host key: a request for NAME that proves this key
// is accepted (in local-network and anything modes).
func (g *Registrar) Expect(ctx context.Context, name, fingerprint string) error {
	if err := advert.CheckHostKey(fingerprint); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := g.b.Commit(ctx, slotstore.Op{Key: expectPrefix + name, Rev: slotstore.AnyRev, Value: []byte(fingerprint)}); err != nil {
		return err
	}
	g.o.Audit(Event{Event: "expect", Node: name, Peer: "admin", Outcome: "ok", Reason: fingerprint})
	g.Kick()
	return nil
}

// Expected returns every pre-pinned host key by name.
func (g *Registrar) Expected(ctx context.Context) (map[string]string, error) {
	gt, err := g.readGate(ctx)
	return gt.expects, err
}

// token is a registration token as stored, under the hash of its secret.
type token struct {
	Expires time.Time `json:"expires"`
	Uses    int       `json:"uses"`
	Used    int       `json:"used"`
}

// NewToken makes a registration token: a secret that lets `uses` requests
// be accepted until ttl from now. Only its hash is stored.
func (g *Registrar) NewToken(ctx context.Context, ttl time.Duration, uses int) (string, time.Time, error) {
	if ttl <= 0 || ttl > 30*24*time.Hour {
		return "", time.Time{}, fmt.Errorf("%w: --ttl: %s, want up to 720h", ErrInvalid, ttl)
	}
	if uses < 1 || uses > 100000 {
		return "", time.Time{}, fmt.Errorf("%w: --uses: %d, want 1 to 100000", ErrInvalid, uses)
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	secret := base64.RawURLEncoding.EncodeToString(b)
	t := token{Expires: g.now().Add(ttl), Uses: uses}
	if err := g.b.Commit(ctx, slotstore.Op{Key: tokenPrefix + slotstore.HashSecret(secret), Rev: 0, Value: encode(t)}); err != nil {
		return "", time.Time{}, err
	}
	g.o.Audit(Event{Event: "token", Peer: "admin", Outcome: "ok", Reason: fmt.Sprintf("%d uses until %s", uses, t.Expires.Format(time.RFC3339))})
	return secret, t.Expires, nil
}

// useToken returns the commit op that spends one use of the token. The
// key is the hash of the secret, so a lookup by key is the comparison: no
// stored hash is compared byte by byte with the caller's.
func (g *Registrar) useToken(ctx context.Context, secret string) (slotstore.Op, error) {
	key := tokenPrefix + slotstore.HashSecret(secret)
	it, err := g.b.Get(ctx, key)
	if err != nil {
		return slotstore.Op{}, err
	}
	if it.Rev == 0 {
		return slotstore.Op{}, ErrBadToken
	}
	var t token
	if err := json.Unmarshal(it.Value, &t); err != nil {
		return slotstore.Op{}, fmt.Errorf("registration token: %w", err)
	}
	if !g.now().Before(t.Expires) || t.Used >= t.Uses {
		return slotstore.Op{}, ErrBadToken
	}
	t.Used++
	return slotstore.Op{Key: key, Rev: it.Rev, Value: encode(t)}, nil
}

// Local tells whether peer lies in a subnet of the interface that holds
// local (the address the request arrived at), or in one of the --subnet
// prefixes.
func (g *Registrar) Local(peer, local netip.Addr) bool {
	peer, local = peer.Unmap(), local.Unmap()
	for _, p := range g.o.Subnets {
		if p.Contains(peer) {
			return true
		}
	}
	for _, n := range g.o.InterfaceNets(local) {
		if n.Bits() > 0 && n.Contains(peer) {
			return true
		}
	}
	return false
}

// InterfaceNets returns the subnets of the interface that holds addr.
func InterfaceNets(addr netip.Addr) []netip.Prefix {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		var nets []netip.Prefix
		holds := false
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			p, err := netip.ParsePrefix(ipn.String())
			if err != nil {
				continue
			}
			nets = append(nets, p.Masked())
			holds = holds || p.Addr().Unmap() == addr
		}
		if holds {
			return nets
		}
	}
	return nil
}
