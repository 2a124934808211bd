package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/qa/clusterlab"
	"github.com/nodejoin/nodejoin/qa/harness"
)

// Auto-registration on namespace hosts on one bridge, each with its own
// dbus-daemon and avahi-daemon: adverts published by join-advertise,
// browsed by join-service's registrar through avahi over D-Bus.

func newAvahiLab(t *testing.T, n int) (*clusterlab.Lab, context.Context) {
	t.Helper()
	harness.Require(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)
	l := clusterlab.New(t, harness.Options{Nodes: n, Avahi: true, ShareRSAHostKey: true})
	if r := l.Init(ctx); !r.OK() {
		t.Fatalf("cluster-init: %s", r)
	}
	return l, ctx
}

// serveRegistrar starts join-service serve on h with the registrar's
// flags; it stops with the test, or with the returned stop.
func serveRegistrar(t *testing.T, ctx context.Context, h *harness.Host, flags ...string) (stop func()) {
	t.Helper()
	sctx, cancel := context.WithCancel(ctx)
	args := append([]string{"join-service", "serve", "--listen", ":1816", "--advertise", h.IP().String()}, flags...)
	cmd := h.Command(sctx, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("join-service serve on %s: %v", h.Name, err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("join-service serve on %s:\n%s", h.Name, out.String())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if r := clusterlab.Run(ctx, h, nil, "join-service", "requests", "list"); r.OK() {
			return stop
		}
		if time.Now().After(deadline) {
			t.Fatalf("join-service on %s does not answer:\n%s", h.Name, out.String())
		}
	}
}

// advertise runs join-advertise on h.
func advertise(t *testing.T, ctx context.Context, h *harness.Host, parent, state string) {
	t.Helper()
	doc := fmt.Sprintf(`{"role": "node", "cluster": %q, "name": %q, "parent": %q, "state": %q}`, clusterlab.ClusterName, h.Name, parent, state)
	if parent == "" {
		doc = fmt.Sprintf(`{"role": "node", "cluster": %q, "name": %q, "state": %q}`, clusterlab.ClusterName, h.Name, state)
	}
	must(t, "join-advertise on "+h.Name, clusterlab.Run(ctx, h, []byte(doc), "join-advertise"))
}

type requestView struct {
	Name, State, Reason, Parent string
	HostKey                     string   `json:"host_key"`
	ConflictKey                 string   `json:"conflict_key"`
	AdvertAddr                  string   `json:"advert_addr"`
	Interface                   string   `json:"interface"`
	AcceptedBy                  string   `json:"accepted_by"`
	Sources                     []string `json:"sources"`
	Withdrawn                   bool     `json:"withdrawn"`
	Slot                        string   `json:"slot"`
	Attempts                    int      `json:"attempts"`
}

func listRequests(t *testing.T, ctx context.Context, h *harness.Host) map[string]requestView {
	t.Helper()
	r := must(t, "requests list", clusterlab.Run(ctx, h, nil, "join-service", "requests", "list"))
	var l struct{ Requests []requestView }
	if err := json.Unmarshal([]byte(r.Stdout), &l); err != nil {
		t.Fatalf("requests list: %v\n%s", err, r.Stdout)
	}
	out := map[string]requestView{}
	for _, v := range l.Requests {
		out[v.Name] = v
	}
	return out
}

// waitRequests polls requests list until ok holds of it.
func waitRequests(t *testing.T, ctx context.Context, h *harness.Host, what string, ok func(map[string]requestView) bool) map[string]requestView {
	t.Helper()
	var last map[string]requestView
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if last = listRequests(t, ctx, h); ok(last) {
			return last
		}
	}
	t.Fatalf("waiting for %s: requests list is %+v", what, last)
	return nil
}

// The registrar sees the nodes' adverts across the bridge, each once, with
// the address and interface it came from; in disabled mode it keeps and
// lists them and registers nothing; a withdrawn advert is listed as such.
func TestRegistrarSeesAdvertsDisabledRegistersNothing(t *testing.T) {
	l, ctx := newAvahiLab(t, 3)
	serveRegistrar(t, ctx, l.Master, "--browse", "avahi")
	if r := must(t, "install-window", clusterlab.Run(ctx, l.Master, nil, "join-service", "install-window", "--for", "10m")); !strings.Contains(r.Stdout, `"open": true`) {
		t.Fatalf("install-window: %s", r.Stdout)
	}
	for _, n := range l.Nodes {
		advertise(t, ctx, n, "", "ready")
	}
	reqs := waitRequests(t, ctx, l.Master, "three adverts", func(m map[string]requestView) bool { return len(m) == 3 })
	// What avahi itself publishes, as an operator would look (once the
	// registrar saw all three, avahi has them too).
	r := must(t, "avahi-browse", clusterlab.Run(ctx, l.Master, nil, "avahi-browse", "-prt", "_nodejoin._tcp"))
	for _, n := range l.Nodes {
		if !strings.Contains(r.Stdout, `"name=`+n.Name+`"`) {
			t.Errorf("avahi-browse on master does not show %s's advert:\n%s", n.Name, r.Stdout)
		}
	}
	for _, n := range l.Nodes {
		v := reqs[n.Name]
		kh, err := n.KnownHosts()
		if err != nil {
			t.Fatal(err)
		}
		if v.State != "discovered" || !strings.Contains(v.Reason, "mode disabled") || v.AdvertAddr != n.IP().String() || v.Interface != "eth0" || v.Slot != "" {
			t.Errorf("%s: %+v", n.Name, v)
		}
		if fp := fingerprintOf(t, ctx, l.Master, string(kh)); fp != v.HostKey {
			t.Errorf("%s: host key %s listed, %s on the node", n.Name, v.HostKey, fp)
		}
	}
	if r := must(t, "slot list", clusterlab.Run(ctx, l.Master, nil, "join-service", "slot", "list")); strings.TrimSpace(r.Stdout) != "[]" {
		t.Errorf("disabled mode issued slots: %s", r.Stdout)
	}
	// The advert withdrawn: avahi's goodbye reaches the registrar.
	must(t, "join-advertise --remove", clusterlab.Run(ctx, l.Nodes[0], nil, "join-advertise", "--remove"))
	waitRequests(t, ctx, l.Master, "the withdrawal", func(m map[string]requestView) bool { return m[l.Nodes[0].Name].Withdrawn })
	// The admin forgets it; the others stay.
	must(t, "requests forget", clusterlab.Run(ctx, l.Master, nil, "join-service", "requests", "forget", l.Nodes[0].Name))
	if m := listRequests(t, ctx, l.Master); len(m) != 2 || m[l.Nodes[0].Name].Name != "" {
		t.Errorf("after forget: %+v", m)
	}
}

// fingerprintOf is ssh-keygen -lf of the ed25519 line of a known_hosts text.
func fingerprintOf(t *testing.T, ctx context.Context, h *harness.Host, knownHosts string) string {
	t.Helper()
	for _, line := range strings.Split(knownHosts, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == "ssh-ed25519" {
			r := must(t, "ssh-keygen -lf", clusterlab.Run(ctx, h, []byte(f[1]+" "+f[2]+"\n"), "ssh-keygen", "-lf", "-"))
			return strings.Fields(r.Stdout)[1]
		}
	}
	t.Fatalf("no ed25519 key in %q", knownHosts)
	return ""
}

// masterPin is the pin of master's cluster certificate, as serve prints it.
func masterPin(t *testing.T, ctx context.Context, h *harness.Host) string {
	t.Helper()
	r := must(t, "serve --dry-run", clusterlab.Run(ctx, h, nil, "join-service", "serve", "--dry-run"))
	_, pin, ok := strings.Cut(strings.TrimSpace(r.Stdout), " pin ")
	if !ok {
		t.Fatalf("no pin in %q", r.Stdout)
	}
	return pin
}

// advertiseMaster publishes master's advert with its pin.
func advertiseMaster(t *testing.T, ctx context.Context, h *harness.Host, pin string) {
	t.Helper()
	doc := fmt.Sprintf(`{"role": "master", "cluster": %q, "name": %q, "pin": %q, "state": "registered"}`, clusterlab.ClusterName, h.Name, pin)
	must(t, "join-advertise on master", clusterlab.Run(ctx, h, []byte(doc), "join-advertise"))
}

// nodeJoin starts node-join on h in the background; wait returns its result.
func nodeJoin(t *testing.T, ctx context.Context, h *harness.Host, args ...string) (wait func() clusterlab.Result) {
	t.Helper()
	done := make(chan clusterlab.Result, 1)
	go func() { done <- clusterlab.Run(ctx, h, nil, append([]string{"node-join"}, args...)...) }()
	return func() clusterlab.Result { return <-done }
}

type auditLine struct {
	Event, Node, Slot, Reason string
}

func auditLog(t *testing.T, h *harness.Host) []auditLine {
	t.Helper()
	b, err := os.ReadFile(h.Path("/var/log/nodejoin/join-service.audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	var out []auditLine
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var a auditLine
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("audit line %q: %v", l, err)
		}
		out = append(out, a)
	}
	return out
}

// local-network mode with an install window: a parent and three children,
// the children advertised and asking first. Every machine finds the master
// by its advert (checking its pin), advertises itself, registers, joins and
// advertises itself registered; each child is accepted only after its
// parent registered; each machine has exactly one slot, also after its
// advert and its node-join run again. A changed host key is a conflict
// with both fingerprints; once the window has closed nothing is accepted.
func TestLocalNetworkParentFirstExactlyOnce(t *testing.T) {
	l, ctx := newAvahiLab(t, 5)
	parent, kids, late := l.Nodes[0], l.Nodes[1:4], l.Nodes[4]
	serveRegistrar(t, ctx, l.Master, "--register-mode", "local-network", "--browse", "avahi")
	pin := masterPin(t, ctx, l.Master)
	advertiseMaster(t, ctx, l.Master, pin)
	must(t, "install-window", clusterlab.Run(ctx, l.Master, nil, "join-service", "install-window", "--for", "10m"))

	var waits []func() clusterlab.Result
	for _, k := range kids {
		waits = append(waits, nodeJoin(t, ctx, k, "--discover", "--ca-pin", pin, "--parent", parent.Name, "--timeout", "2m"))
	}
	waitRequests(t, ctx, l.Master, "three children waiting for their parent", func(m map[string]requestView) bool {
		n := 0
		for _, k := range kids {
			if v := m[k.Name]; v.State == "pending" && v.Reason == "waiting for parent "+parent.Name && len(v.Sources) == 2 {
				n++
			}
		}
		return n == 3
	})
	waits = append(waits, nodeJoin(t, ctx, parent, "--discover", "--ca-pin", pin, "--timeout", "2m"))
	for i, w := range waits {
		r := w()
		if !r.OK() || !strings.Contains(r.Stdout, `"status": "joined"`) || !strings.Contains(r.Stdout, `"state": "registered"`) {
			rl := clusterlab.Run(ctx, l.Master, nil, "join-service", "requests", "list")
			b, _ := os.ReadFile(l.Master.Path("/var/log/nodejoin/join-service.audit.log"))
			t.Fatalf("node-join %d: %s\nrequests list:\n%s\naudit log:\n%s", i, r, rl.Stdout, b)
		}
	}
	// Parent first: its "registered" comes before every child's "accept".
	parentAt, seen := -1, map[string]int{}
	for i, a := range auditLog(t, l.Master) {
		switch {
		case a.Event == "registered" && a.Node == parent.Name:
			parentAt = i
		case a.Event == "accept" && a.Slot != "":
			seen[a.Node]++
			if a.Node != parent.Name && (parentAt < 0 || i < parentAt) {
				t.Errorf("%s accepted (audit line %d) before its parent registered (line %d)", a.Node, i, parentAt)
			}
		}
	}
	all := append([]*harness.Host{parent}, kids...)
	reqs := waitRequests(t, ctx, l.Master, "four registered", func(m map[string]requestView) bool {
		for _, h := range all {
			if m[h.Name].State != "registered" {
				return false
			}
		}
		return true
	})
	for _, h := range all {
		if v := reqs[h.Name]; v.State != "registered" || v.AcceptedBy != "install-window" || v.Attempts != 1 || seen[h.Name] != 1 {
			t.Errorf("%s: %+v, accepted %d times", h.Name, v, seen[h.Name])
		}
		if ss, err := clusterlab.Ssconf(l.Master); err != nil || !strings.Contains(ss["node_list"], h.Name) {
			t.Errorf("the master does not record %s (%v)", h.Name, err)
		}
	}
	// Each advert now says registered, as avahi shows it on the master
	// (once avahi has the new record).
	var r clusterlab.Result
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		r = must(t, "avahi-browse", clusterlab.Run(ctx, l.Master, nil, "avahi-browse", "-prt", "_nodejoin._tcp"))
		n := 0
		for _, h := range all {
			if regexp.MustCompile(`;` + h.Name + `;_nodejoin._tcp;local;[^\n]*"state=registered"`).MatchString(r.Stdout) {
				n++
			}
		}
		if n == len(all) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the adverts do not all say registered:\n%s", r.Stdout)
		}
	}

	// Repeated adverts and a second run: still one slot each.
	for range 3 {
		advertise(t, ctx, kids[0], parent.Name, "ready")
		advertise(t, ctx, kids[0], parent.Name, "registered")
	}
	if r := nodeJoin(t, ctx, kids[0], "--discover", "--ca-pin", pin, "--parent", parent.Name, "--timeout", "1m")(); !r.OK() ||
		!strings.Contains(r.Stdout, `"status": "registered before"`) {
		t.Errorf("node-join again on %s: %s", kids[0].Name, r)
	}
	countSlots := func() map[string]int {
		r := must(t, "slot list", clusterlab.Run(ctx, l.Master, nil, "join-service", "slot", "list"))
		var slots []struct {
			NodeName string `json:"node_name"`
		}
		if err := json.Unmarshal([]byte(r.Stdout), &slots); err != nil {
			t.Fatal(err)
		}
		n := map[string]int{}
		for _, s := range slots {
			n[s.NodeName]++
		}
		return n
	}
	for name, n := range countSlots() {
		if n != 1 {
			t.Errorf("%s has %d slots", name, n)
		}
	}

	// Another host key for a registered name: a conflict, with both.
	old := reqs[kids[1].Name].HostKey
	must(t, "new host key", clusterlab.Run(ctx, kids[1], nil, "sh", "-c",
		"rm -f /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key.pub && ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key"))
	advertise(t, ctx, kids[1], parent.Name, "ready")
	got := waitRequests(t, ctx, l.Master, "the conflict", func(m map[string]requestView) bool { return m[kids[1].Name].State == "conflict" })[kids[1].Name]
	if got.HostKey != old || got.ConflictKey == "" || got.ConflictKey == old || !strings.Contains(got.Reason, old) || !strings.Contains(got.Reason, got.ConflictKey) {
		t.Errorf("conflict: %+v", got)
	}

	// The window closes by the clock: a new machine is kept, not accepted.
	must(t, "install-window", clusterlab.Run(ctx, l.Master, nil, "join-service", "install-window", "--for", "1s"))
	time.Sleep(1500 * time.Millisecond)
	r = must(t, "node-join --register", clusterlab.Run(ctx, late, nil, "node-join", "--register", "--server", l.Master.IP().String(),
		"--ca-pin", pin, "--cluster", clusterlab.ClusterName, "--timeout", "1m"))
	if !strings.Contains(r.Stdout, `"state": "discovered"`) {
		t.Errorf("a request after the window closed: %s", r.Stdout)
	}
	time.Sleep(3 * time.Second) // passes of the registrar
	if v := listRequests(t, ctx, l.Master)[late.Name]; v.State != "discovered" || !strings.Contains(v.Reason, "no install window") {
		t.Errorf("after the window: %+v", v)
	}
	if n := countSlots()[late.Name]; n != 0 {
		t.Errorf("%s got %d slots after the window closed", late.Name, n)
	}
}

// The registrar killed (SIGKILL) again and again while machines register:
// after each acceptance it is killed and started again on the same store.
// Every machine still joins, each with exactly one slot and one attempt;
// the install window outlives the restarts.
func TestRegistrarKilledMidRegistration(t *testing.T) {
	l, ctx := newAvahiLab(t, 3)
	flags := []string{"--register-mode", "local-network", "--browse", "avahi"}
	stop := serveRegistrar(t, ctx, l.Master, flags...)
	pin := masterPin(t, ctx, l.Master)
	advertiseMaster(t, ctx, l.Master, pin)
	must(t, "install-window", clusterlab.Run(ctx, l.Master, nil, "join-service", "install-window", "--for", "10m"))
	var waits []func() clusterlab.Result
	for _, n := range l.Nodes {
		waits = append(waits, nodeJoin(t, ctx, n, "--discover", "--ca-pin", pin, "--timeout", "2m30s"))
	}
	kills, seen := 0, 0
	for deadline := time.Now().Add(90 * time.Second); seen < len(l.Nodes) && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		accepts := 0
		for _, a := range auditLog(t, l.Master) {
			if a.Event == "accept" && a.Slot != "" {
				accepts++
			}
		}
		if accepts > seen {
			seen = accepts
			stop()
			kills++
			stop = serveRegistrar(t, ctx, l.Master, flags...)
		}
	}
	for i, w := range waits {
		if r := w(); !r.OK() || !strings.Contains(r.Stdout, `"status": "joined"`) {
			t.Fatalf("node-join on %s: %s", l.Nodes[i].Name, r)
		}
	}
	t.Logf("join-service killed %d times", kills)
	if kills == 0 {
		t.Fatal("the registrar was never killed")
	}
	reqs := waitRequests(t, ctx, l.Master, "all registered", func(m map[string]requestView) bool {
		for _, n := range l.Nodes {
			if m[n.Name].State != "registered" {
				return false
			}
		}
		return true
	})
	slots := map[string]int{}
	r := must(t, "slot list", clusterlab.Run(ctx, l.Master, nil, "join-service", "slot", "list"))
	var sl []struct {
		NodeName string `json:"node_name"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &sl); err != nil {
		t.Fatal(err)
	}
	for _, s := range sl {
		slots[s.NodeName]++
	}
	for _, n := range l.Nodes {
		if v := reqs[n.Name]; v.Attempts != 1 || slots[n.Name] != 1 {
			t.Errorf("%s: %d attempts, %d slots", n.Name, v.Attempts, slots[n.Name])
		}
	}
}

// A machine on another subnet (its address routed, not on the master's
// interface) must ask directly, and local-network mode does not accept it
// by the install window: only by a pre-pinned host key (that the request
// proves) or a registration token.
func TestSecondSubnetNeedsPinnedKeyOrToken(t *testing.T) {
	l, ctx := newAvahiLab(t, 3)
	serveRegistrar(t, ctx, l.Master, "--register-mode", "local-network", "--browse", "avahi")
	pin := masterPin(t, ctx, l.Master)
	must(t, "install-window", clusterlab.Run(ctx, l.Master, nil, "join-service", "install-window", "--for", "10m"))
	// node1..3 speak to the master from 192.168.77.0/24 (a routed subnet).
	must(t, "master route", clusterlab.Run(ctx, l.Master, nil, "ip", "route", "add", "192.168.77.0/24", "dev", "eth0"))
	for i, n := range l.Nodes {
		addr := fmt.Sprintf("192.168.77.%d", 10+i)
		must(t, "second address", clusterlab.Run(ctx, n, nil, "ip", "addr", "add", addr+"/32", "dev", "eth0"))
		must(t, "source route", clusterlab.Run(ctx, n, nil, "ip", "route", "add", l.Master.IP().String()+"/32", "dev", "eth0", "src", addr))
	}
	plain, pinned, tokened := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	kh, err := pinned.KnownHosts()
	if err != nil {
		t.Fatal(err)
	}
	must(t, "requests expect", clusterlab.Run(ctx, l.Master, nil, "join-service", "requests", "expect", pinned.Name, fingerprintOf(t, ctx, l.Master, string(kh))))
	r := must(t, "requests token", clusterlab.Run(ctx, l.Master, nil, "join-service", "requests", "token", "--uses", "1"))
	var tok struct{ Token string }
	if err := json.Unmarshal([]byte(r.Stdout), &tok); err != nil || tok.Token == "" {
		t.Fatalf("requests token: %v\n%s", err, r.Stdout)
	}
	writeRootFile(t, tokened, "/root/register.token", tok.Token+"\n")
	args := []string{"--register", "--wait", "--server", l.Master.IP().String(), "--ca-pin", pin, "--cluster", clusterlab.ClusterName, "--timeout", "90s"}
	wp := nodeJoin(t, ctx, pinned, args...)
	wt := nodeJoin(t, ctx, tokened, append(args, "--register-token-file", "/root/register.token")...)
	r = must(t, "node-join --register", clusterlab.Run(ctx, plain, nil, "node-join", "--register", "--server", l.Master.IP().String(),
		"--ca-pin", pin, "--cluster", clusterlab.ClusterName, "--timeout", "1m"))
	for _, w := range []func() clusterlab.Result{wp, wt} {
		if r := w(); !r.OK() || !strings.Contains(r.Stdout, `"status": "joined"`) {
			t.Fatalf("node-join: %s", r)
		}
	}
	reqs := waitRequests(t, ctx, l.Master, "two registered", func(m map[string]requestView) bool {
		return m[pinned.Name].State == "registered" && m[tokened.Name].State == "registered"
	})
	if v := reqs[pinned.Name]; v.AcceptedBy != "expected-key" {
		t.Errorf("%s: %+v", pinned.Name, v)
	}
	if v := reqs[tokened.Name]; v.AcceptedBy != "token" {
		t.Errorf("%s: %+v", tokened.Name, v)
	}
	if v := reqs[plain.Name]; v.State != "discovered" || !strings.Contains(v.Reason, "from 192.168.77.10, not a local subnet") {
		t.Errorf("%s from the second subnet in the window: %+v", plain.Name, v)
	}
}

// The pure-Go fallback (--browse mdns, for a master without avahi-daemon)
// sees the adverts avahi publishes on the nodes, and a withdrawn one.
func TestRegistrarGoMDNSFallback(t *testing.T) {
	l, ctx := newAvahiLab(t, 2)
	serveRegistrar(t, ctx, l.Master, "--browse", "mdns")
	for _, n := range l.Nodes {
		advertise(t, ctx, n, "", "ready")
	}
	reqs := waitRequests(t, ctx, l.Master, "two adverts", func(m map[string]requestView) bool { return len(m) == 2 })
	for _, n := range l.Nodes {
		if v := reqs[n.Name]; v.State != "discovered" || v.AdvertAddr != n.IP().String() || !slices.Equal(v.Sources, []string{"mdns"}) {
			t.Errorf("%s: %+v", n.Name, v)
		}
	}
	must(t, "join-advertise --remove", clusterlab.Run(ctx, l.Nodes[1], nil, "join-advertise", "--remove"))
	waitRequests(t, ctx, l.Master, "the withdrawal", func(m map[string]requestView) bool {
		return m[l.Nodes[1].Name].Withdrawn && !m[l.Nodes[0].Name].Withdrawn
	})
}
