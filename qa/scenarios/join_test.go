package scenarios

import (
	"sort"
	"testing"

	"github.com/nodejoin/nodejoin/qa/clusterlab"
	"github.com/nodejoin/nodejoin/qa/harness"
)

// Scenario 1: cluster-init, then node-add of one node over exactly one SSH
// connection; the node then holds the cluster's keys, ssconf and a node
// daemon that answers over TLS.
func TestJoinOneNode(t *testing.T) {
	l, ctx := newLab(t, 1)
	node := l.Nodes[0]
	if err := l.TrustHostKeys(node); err != nil {
		t.Fatal(err)
	}
	before := node.CountSSHConnections()
	r := must(t, "node-add", l.NodeAdd(ctx, node.Name))
	t.Logf("node-add took %v:\n%s%s", r.Took, r.Stdout, r.Stderr)
	if got := node.CountSSHConnections() - before; got != 1 {
		t.Errorf("%s's sshd accepted %d connections during node-add, want 1; log:\n%s", node.Name, got, node.SSHDLog())
	}
	checkJoined(t, ctx, l, node)
}

// Scenario 2: three nodes in parallel, each with the master's ssconf (node
// lists naming all three); then the same node-add again, which changes
// nothing and restarts nothing.
func TestJoinThreeThenRerun(t *testing.T) {
	l, ctx := newLab(t, 3)
	if err := l.TrustHostKeys(l.Nodes...); err != nil {
		t.Fatal(err)
	}
	names := clusterlab.Names(l.Nodes)
	before := map[string]int{}
	for _, n := range l.Nodes {
		before[n.Name] = n.CountSSHConnections()
	}
	must(t, "node-add", l.NodeAdd(ctx, names...))
	for _, n := range l.Nodes {
		if got := n.CountSSHConnections() - before[n.Name]; got != 1 {
			t.Errorf("%s: node-add took %d SSH connections, want 1", n.Name, got)
		}
		stale, err := staleLists(l, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(stale) > 0 {
			t.Errorf("%s: after the parallel add, ssconf %v differ from the master's", n.Name, stale)
		}
		checkJoined(t, ctx, l, n)
	}

	type state struct {
		tree, noded string
		sshd, conns int
	}
	snap := func(n *harness.Host) state {
		return state{treeHash(t, n), nodedPID(n), sshdStarts(n), n.CountSSHConnections()}
	}
	prev := map[string]state{}
	trees := map[string]string{}
	for _, n := range l.Nodes {
		prev[n.Name] = snap(n)
		trees[n.Name] = tree(t, n)
	}
	r := must(t, "node-add again", l.NodeAdd(ctx, names...))
	t.Logf("node-add again took %v:\n%s%s", r.Took, r.Stdout, r.Stderr)
	for _, n := range l.Nodes {
		b, a := prev[n.Name], snap(n)
		if a.tree != b.tree {
			t.Errorf("%s: the rerun changed files:\nbefore:\n%s\nafter:\n%s", n.Name, trees[n.Name], tree(t, n))
		}
		if a.sshd != b.sshd {
			t.Errorf("%s: the rerun restarted sshd (%d starts, was %d)", n.Name, a.sshd, b.sshd)
		}
		if a.noded != b.noded || a.noded == "" {
			t.Errorf("%s: noded pid %q after the rerun, was %q: restarted or gone", n.Name, a.noded, b.noded)
		}
		if got := a.conns - b.conns; got != 1 {
			t.Errorf("%s: the rerun took %d SSH connections, want 1", n.Name, got)
		}
	}
}

// staleLists returns the ssconf keys whose value on node differs from the
// master's.
func staleLists(l *clusterlab.Lab, node *harness.Host) ([]string, error) {
	ms, err := clusterlab.Ssconf(l.Master)
	if err != nil {
		return nil, err
	}
	ns, err := clusterlab.Ssconf(node)
	if err != nil {
		return nil, err
	}
	var keys []string
	for k, v := range ms {
		if ns[k] != v {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys, nil
}
