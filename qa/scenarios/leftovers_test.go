package scenarios

import (
	"testing"

	"github.com/nodejoin/nodejoin/qa/clusterlab"
	"github.com/nodejoin/nodejoin/qa/harness"
)

// A lab run writes nothing on the machine outside its hosts: cluster-init,
// a join (prepare-node-join, node-daemon-setup, noded and its log) and the
// teardown leave the machine's /var/log, /var/lib/ganeti, /etc/nodejoin,
// /run ... (harness.OutsideDirs) as they were. Not parallel, so that it
// runs alone: a lab of another test package in this process cannot
// interleave; a process outside this test run that writes there meanwhile
// is reported too, by name.
func TestLabLeavesNothingOutside(t *testing.T) {
	harness.Require(t)
	before, err := harness.TakeSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	l := clusterlab.New(t, harness.Options{Nodes: 1})
	ctx := t.Context()
	must(t, "cluster-init", l.Init(ctx))
	if err := l.TrustHostKeys(l.Nodes...); err != nil {
		t.Fatal(err)
	}
	must(t, "node-add", l.NodeAdd(ctx, l.Nodes[0].Name))
	must(t, "noded --stop", clusterlab.Run(ctx, l.Nodes[0], nil, "noded", "--stop"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := harness.CheckNothingOutside(before); err != nil {
		t.Error(err)
	}
}
