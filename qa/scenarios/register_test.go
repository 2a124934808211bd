package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
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
