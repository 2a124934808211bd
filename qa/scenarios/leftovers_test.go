package scenarios

import (
	"os"
	"strings"
	"testing"

	"github.com/nodejoin/nodejoin/qa/clusterlab"
	"github.com/nodejoin/nodejoin/qa/harness"
)

// leftoverProbe is the file the helper writes on the machine on purpose,
// which the test must see.
const leftoverProbe = "/var/log/njqa-leftover-probe"

// TestHelperLeftoverLab is not a test: TestLabLeavesNothingOutside runs it
// in a child process. It runs a lab through a join (cluster-init,
// node-add: prepare-node-join, node-daemon-setup, noded and its log) and
// its teardown, then writes leftoverProbe itself.
func TestHelperLeftoverLab(t *testing.T) {
	if os.Getenv("NJQA_LEFTOVER_LAB") != "1" {
		t.Skip("helper process for TestLabLeavesNothingOutside")
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
	if err := os.WriteFile(leftoverProbe, []byte("written outside on purpose\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A lab run writes nothing on the machine outside its hosts. The run is a
// child process in a mount namespace of its own, where the machine's /etc,
// /root, /var/lib, /var/log, /var/tmp, /usr/local and /dev/shm are
// overlays: whatever the child or its lab hosts write there lands in the
// overlays' upper layers, and only there, so other processes of the
// machine cannot make this test fail. The child's own deliberate write
// (leftoverProbe) must be caught, and be the only thing written.
func TestLabLeavesNothingOutside(t *testing.T) {
	harness.Require(t)
	bin, err := clusterlab.Build()
	if err != nil {
		t.Fatal(err)
	}
	written, out, err := harness.RunOverlaid(t.TempDir(), []string{"NJQA_LEFTOVER_LAB=1", clusterlab.BinEnv + "=" + bin},
		os.Args[0], "-test.run=^TestHelperLeftoverLab$", "-test.count=1", "-test.v")
	if err != nil {
		t.Fatalf("the lab run failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestHelperLeftoverLab") {
		t.Fatalf("the lab run did not pass:\n%s", out)
	}
	want := leftoverProbe + " (written)"
	var other []string
	caught := false
	for _, w := range written {
		if w == want {
			caught = true
		} else {
			other = append(other, w)
		}
	}
	if !caught {
		t.Errorf("the deliberate write %s was not caught; written: %q", leftoverProbe, written)
	}
	if len(other) > 0 {
		t.Errorf("the lab wrote on the machine outside its hosts:\n%s", strings.Join(other, "\n"))
	}
}
