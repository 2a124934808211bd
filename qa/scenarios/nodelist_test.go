package scenarios

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nodejoin/nodejoin/internal/master/nodelist"
	"github.com/nodejoin/nodejoin/qa/clusterlab"
)

// Scenario: node-list on a master with two joined nodes lists both as
// joined by push, with the host key each was verified by before it took
// the cluster's; --check finds both node daemons healthy; with node2's
// daemon stopped (SIGSTOP: it accepts but never answers), --check ends
// within its timeout, says so for node2 only, and exits 1.
func TestNodeListCheck(t *testing.T) {
	l, ctx := newLab(t, 2)
	if err := l.TrustHostKeys(l.Nodes...); err != nil {
		t.Fatal(err)
	}
	own := map[string]string{}
	for _, n := range l.Nodes {
		own[n.Name] = fingerprint(t, ctx, n, "/etc/ssh/ssh_host_ed25519_key.pub")
	}
	must(t, "node-add", l.NodeAdd(ctx, clusterlab.Names(l.Nodes)...))
	cluster := fingerprint(t, ctx, l.Master, "/etc/ssh/ssh_host_ed25519_key.pub")

	r := must(t, "node-list --check", clusterlab.Run(ctx, l.Master, nil, "node-list", "--check", "--json"))
	got := parseList(t, r.Stdout)
	if len(got) != 3 || got[l.Master.Name].Role != "master" {
		t.Fatalf("node-list lists %v, want the master and both nodes:\n%s", got, r.Stdout)
	}
	for _, n := range l.Nodes {
		e := got[n.Name]
		if e.Role != "node" || e.Via != "push" || e.JoinedAt == nil || e.JoinedHostKey != own[n.Name] || e.HostKey != cluster || e.PrimaryIP != n.IP().String() {
			t.Errorf("%s: listed as %+v; want a push join verified by %s, presenting %s, at %s", n.Name, e, own[n.Name], cluster, n.IP())
		}
		if e.Noded == nil || !e.Noded.OK || e.Noded.Version == "" {
			t.Errorf("%s: --check says %+v, want a healthy noded", n.Name, e.Noded)
		}
	}

	node2 := l.Nodes[1]
	pid := nodedPID(node2)
	must(t, "stopping noded", clusterlab.Run(ctx, node2, nil, "kill", "-STOP", pid))
	t.Cleanup(func() { clusterlab.Run(ctx, node2, nil, "kill", "-CONT", pid) })
	r = clusterlab.Run(ctx, l.Master, nil, "node-list", "--check", "--timeout", "2s", "--json")
	got = parseList(t, r.Stdout)
	if r.Code != 1 || !strings.Contains(r.Stderr, "node-list: error: 1 of 3 nodes' daemons are not healthy: "+node2.Name) {
		t.Errorf("node-list --check with node2's daemon stopped: %s", r)
	}
	if c := got[node2.Name].Noded; c == nil || c.OK || c.Error != "no answer within --timeout 2s" || c.Seconds > 4 {
		t.Errorf("%s: --check says %+v, want no answer within the 2 s timeout", node2.Name, c)
	}
	if c := got[l.Nodes[0].Name].Noded; c == nil || !c.OK {
		t.Errorf("%s: --check says %+v, want healthy", l.Nodes[0].Name, c)
	}
}

func parseList(t *testing.T, stdout string) map[string]nodelist.Node {
	t.Helper()
	out := map[string]nodelist.Node{}
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var n nodelist.Node
		if err := json.Unmarshal([]byte(l), &n); err != nil {
			t.Fatalf("node-list --json: %q: %v", l, err)
		}
		out[n.Name] = n
	}
	return out
}
