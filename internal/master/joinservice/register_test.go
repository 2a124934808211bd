package joinservice

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/master/registrar"
	"github.com/nodejoin/nodejoin/internal/master/slotstore"
	"github.com/nodejoin/nodejoin/internal/sshkeys"
)

// withRegistrar gives the service a registrar over the fixture's store,
// in mode; the test drives its passes.
func withRegistrar(f **registrar.Registrar, mode registrar.Mode, subnets ...netip.Prefix) func(*Options) {
	return func(o *Options) {
		g, err := registrar.New(registrar.Options{Backend: o.Store.Backend(), Slots: o.Store, Master: "master.example.org",
			Mode: mode, Subnets: subnets, Audit: RegistrarAudit(o.Audit),
			// loopback holds every 127/8 address: only --subnet is local here
			InterfaceNets: func(netip.Addr) []netip.Prefix { return nil }})
		if err != nil {
			panic(err)
		}
		*f, o.Registrar = g, g
	}
}

type machine struct {
	*node
	name, secret string
	hostKey      ssh.Signer
}

func (f *fixture) machine(t testing.TB, ip, name string) *machine {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hk, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return &machine{node: f.node(t, ip, f.pins), name: name, secret: "request-secret-of-" + name + "-0123456789", hostKey: hk}
}

func (m *machine) request(t testing.TB, sign bool) (int, []byte) {
	h := slotstore.HashSecret(m.secret)
	req := joinapi.RegisterRequest{Name: m.name, Role: "node", Cluster: "c1.example.org",
		HostKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(m.hostKey.PublicKey()))), RequestSecretHash: h}
	if sign {
		var err error
		if req.Signature, err = joinapi.SignRegister(m.hostKey, m.name, h); err != nil {
			t.Fatal(err)
		}
	}
	return m.call(t, http.MethodPost, joinapi.PathRegister, "", req)
}

func (m *machine) poll(t *testing.T, secret string) (int, joinapi.RegisterAnswer) {
	code, body := m.call(t, http.MethodGet, "/v1/register/"+m.name, secret, nil)
	var a joinapi.RegisterAnswer
	if code == http.StatusOK {
		if err := json.Unmarshal(body, &a); err != nil {
			t.Fatal(err)
		}
	}
	return code, a
}

// A direct request is kept and polled with the request secret only; once
// accepted it is a slot that the machine fetches with that same secret,
// and its join moves the record to registered.
func TestRegisterThenFetchAsASlot(t *testing.T) {
	var g *registrar.Registrar
	f := newFixture(t, withRegistrar(&g, registrar.Disabled))
	ctx := context.Background()
	m := f.machine(t, "127.0.0.2", "node9.example.org")
	if code, body := m.request(t, true); code != http.StatusAccepted {
		t.Fatalf("register: %d %s", code, body)
	}
	for _, secret := range []string{"", "wrong-secret-wrong-secret-wrong"} {
		if code, _ := m.poll(t, secret); code != http.StatusUnauthorized {
			t.Fatalf("poll with secret %q: %d", secret, code)
		}
	}
	other := f.machine(t, "127.0.0.3", "unknown.example.org")
	if code, body := other.call(t, http.MethodGet, "/v1/register/unknown.example.org", m.secret, nil); code != http.StatusUnauthorized ||
		!strings.Contains(string(body), "unknown request or wrong secret") {
		t.Fatalf("poll of an unknown name: %d %s", code, body)
	}
	if err := g.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	code, a := m.poll(t, m.secret)
	if code != http.StatusOK || a.State != "discovered" || a.Slot != "" || !strings.Contains(a.Reason, "mode disabled") {
		t.Fatalf("before accept: %d %+v", code, a)
	}
	// The request secret is asked for again with another secret: refused.
	m2 := *m
	m2.secret = "another-secret-another-secret-xx"
	if code, body := m2.request(t, false); code != http.StatusConflict || errCode(t, body) != joinapi.CodeRequestExists {
		t.Fatalf("a second secret: %d %s", code, body)
	}
	// requests list shows the record, never the hash.
	var l RequestsAnswer
	if err := f.admin.Do(ctx, http.MethodGet, AdminRequests, nil, nil, &l); err != nil {
		t.Fatal(err)
	}
	if len(l.Requests) != 1 || l.Requests[0].HostKey != sshkeys.Fingerprint(m.hostKey.PublicKey()) || !l.Requests[0].Proven || l.Mode != "disabled" {
		t.Fatalf("list: %+v", l)
	}
	raw, _ := json.Marshal(l)
	if strings.Contains(string(raw), slotstore.HashSecret(m.secret)) {
		t.Fatal("requests list shows the secret's hash")
	}
	if err := f.admin.Do(ctx, http.MethodPost, "/admin/v1/requests/node9.example.org/accept", nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := g.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	code, a = m.poll(t, m.secret)
	if code != http.StatusOK || a.State != "registering" || a.Slot == "" {
		t.Fatalf("after accept: %d %+v", code, a)
	}
	if code, body := m.fetch(t, a.Slot, m.secret); code != http.StatusOK {
		t.Fatalf("fetching the registration's slot with the request secret: %d %s", code, body)
	}
	if code, body := m.report(t, a.Slot, m.secret, joinapi.StatusJoined); code != http.StatusOK {
		t.Fatalf("report: %d %s", code, body)
	}
	if err := g.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if _, a = m.poll(t, m.secret); a.State != "registered" {
		t.Fatalf("after the join: %+v", a)
	}
	if !regexp.MustCompile(`"event":"registered".*"node":"node9.example.org"`).MatchString(f.audit.String()) {
		t.Fatalf("audit log:\n%s", f.audit.String())
	}
}

// local-network mode: a request from a --subnet address in an open window
// is accepted; one from elsewhere waits, and an unsigned request does not
// get in by a pre-pinned key.
func TestRegisterLocalNetwork(t *testing.T) {
	var g *registrar.Registrar
	f := newFixture(t, withRegistrar(&g, registrar.LocalNetwork, netip.MustParsePrefix("127.0.0.2/32")))
	ctx := context.Background()
	if _, err := g.OpenWindow(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	in := f.machine(t, "127.0.0.2", "in.example.org")
	out := f.machine(t, "127.0.0.3", "out.example.org")
	pinned := f.machine(t, "127.0.0.4", "pinned.example.org")
	in.request(t, false)
	out.request(t, false)
	if err := g.Expect(ctx, "pinned.example.org", sshkeys.Fingerprint(pinned.hostKey.PublicKey())); err != nil {
		t.Fatal(err)
	}
	pinned.request(t, false)
	if err := g.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if _, a := in.poll(t, in.secret); a.State != "registering" {
		t.Errorf("local request in the window: %+v", a)
	}
	if _, a := out.poll(t, out.secret); a.State != "discovered" || !strings.Contains(a.Reason, "not a local subnet") {
		t.Errorf("request from elsewhere: %+v", a)
	}
	if _, a := pinned.poll(t, pinned.secret); a.State != "discovered" {
		t.Errorf("unsigned request with a pinned key: %+v", a)
	}
	pinned.request(t, true)
	if err := g.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if _, a := pinned.poll(t, pinned.secret); a.State != "registering" {
		t.Errorf("signed request with a pinned key: %+v", a)
	}
	// A signature by another key is refused outright.
	h := slotstore.HashSecret(out.secret)
	sig, _ := joinapi.SignRegister(pinned.hostKey, out.name, h)
	code, body := out.call(t, http.MethodPost, joinapi.PathRegister, "", joinapi.RegisterRequest{Name: out.name, Role: "node", Cluster: "c1.example.org",
		HostKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(out.hostKey.PublicKey()))), RequestSecretHash: h, Signature: sig})
	if code != http.StatusBadRequest || !strings.Contains(string(body), "does not verify") {
		t.Fatalf("forged signature: %d %s", code, body)
	}
}

// The node sends the hash the store compares: both sides hash alike.
func TestRequestSecretHashesAgree(t *testing.T) {
	for _, s := range []string{"", "a", "q8Yb2mFz-secret_of_43_characters_long_000000"} {
		if joinapi.SecretHash(s) != slotstore.HashSecret(s) {
			t.Errorf("SecretHash(%q) differs from the store's hash", s)
		}
	}
}

func fingerprint(m *machine) string { return sshkeys.Fingerprint(m.hostKey.PublicKey()) }

func jsonInto(b []byte, v any) error { return json.Unmarshal(b, v) }
