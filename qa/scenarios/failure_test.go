package scenarios

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/qa/clusterlab"
	"github.com/nodejoin/nodejoin/qa/harness"
)

// Scenario 5: sshd's configuration check fails on the node (a bad drop-in
// file): prepare-node-join puts every file back, and the node is still
// reachable with its own host key.
func TestSSHDCheckFails(t *testing.T) {
	l, ctx := newLab(t, 1)
	node := l.Nodes[0]
	if err := l.TrustHostKeys(node); err != nil {
		t.Fatal(err)
	}
	bad := "/etc/ssh/sshd_config.d/broken.conf"
	if err := os.WriteFile(node.Path(bad), []byte("NoSuchOption yes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hash, listing, starts := treeHash(t, node), tree(t, node), sshdStarts(node)
	r := l.NodeAdd(ctx, node.Name)
	t.Logf("node-add: %s", r)
	if r.OK() {
		t.Fatal("node-add succeeded with a broken sshd configuration on the node")
	}
	if !strings.Contains(r.Stderr, "node-add: error: "+node.Name+": failed at prepare-node-join") {
		t.Errorf("node-add's report does not say that prepare-node-join failed on %s", node.Name)
	}
	if got := treeHash(t, node); got != hash {
		t.Errorf("the node was not rolled back:\nbefore:\n%s\nafter:\n%s", listing, tree(t, node))
	}
	if sshdStarts(node) != starts {
		t.Error("sshd was restarted on a configuration that fails its check")
	}
	// Still reachable, with its own host key and strict checking.
	r = clusterlab.Run(ctx, l.Master, nil, "ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "ControlPath=none", "root@"+node.Name, "hostname")
	if !r.OK() || strings.TrimSpace(r.Stdout) != node.Name {
		t.Errorf("the node is not reachable after the rollback: %s", r)
	}
	// Once the configuration is fixed, the join goes through.
	if err := os.Remove(node.Path(bad)); err != nil {
		t.Fatal(err)
	}
	must(t, "node-add after the fix", l.NodeAdd(ctx, node.Name))
	checkJoined(t, ctx, l, node)
}

// Scenario 6: prepare-node-join is killed (SIGKILL) in the middle of its
// transaction: every file is wholly old or wholly new, and a new node-add
// completes.
func TestKilledMidJoin(t *testing.T) {
	l, ctx := newLab(t, 1)
	node := l.Nodes[0]
	if err := l.TrustHostKeys(node); err != nil {
		t.Fatal(err)
	}
	// The node's root key exists and is kept, so that "new" is one thing.
	must(t, "ssh-keygen", clusterlab.Run(ctx, node, nil, "ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f", "/root/.ssh/id_ed25519"))
	// A failpoint build of prepare-node-join, which NODEJOIN_CRASH_AT=N kills
	// at its Nth crash point (internal/txn), behind a wrapper node-add runs.
	fp := filepath.Join(t.TempDir(), "prepare-node-join.failpoint")
	if err := clusterlab.BuildFailpoint("./cmd/prepare-node-join", fp); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("cp", fp, node.Path("/usr/local/sbin/prepare-node-join.failpoint")).Run(); err != nil {
		t.Fatal(err)
	}
	// The steps: the state directory, the journal, the backups of the files
	// there (a temporary file and a rename each), a temporary file for each
	// new content and the join record, then their renames: step 25 renames
	// a file over its target after others were replaced.
	const step = 25
	wrapper := fmt.Sprintf("#!/bin/sh\nNODEJOIN_CRASH_AT=%d exec /usr/local/sbin/prepare-node-join.failpoint \"$@\"\n", step)
	if err := os.WriteFile(node.Path("/usr/local/sbin/prepare-node-join-crash"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	skip := []string{"/root/.ssh/known_hosts"}
	old := contents(t, node, skip)
	r := l.NodeAdd(ctx, "--prepare-program", "prepare-node-join-crash", node.Name)
	t.Logf("node-add with the crashing prepare-node-join: %s", r)
	if r.OK() {
		t.Fatal("node-add succeeded although prepare-node-join was killed")
	}
	if !strings.Contains(r.Stdout+r.Stderr, fmt.Sprintf("failpoint: killed at step %d: rename over ", step)) {
		t.Errorf("prepare-node-join was not killed at step %d, renaming a file (node-add's output above)", step)
	}
	if !strings.Contains(r.Stderr, "ended without an exit status") {
		t.Errorf("node-add does not say that prepare-node-join ended without an exit status:\n%s", r.Stderr)
	}
	if _, err := os.Stat(node.Path("/var/lib/nodejoin/journal.json")); err != nil {
		t.Errorf("no journal after the kill: %v", err)
	}
	mid := contents(t, node, skip)
	start := time.Now()
	r = must(t, "node-add after the kill", l.NodeAdd(ctx, node.Name))
	t.Logf("node-add after the kill took %v", time.Since(start))
	checkJoined(t, ctx, l, node)
	now := contents(t, node, skip)
	replaced := 0
	for p, m := range mid {
		o, wasOld := old[p]
		n, isNew := now[p]
		switch {
		case wasOld && m == o:
		case isNew && m == n:
			if m != o {
				replaced++
			}
		case !wasOld && !isNew: // the journal, a temporary file: gone now
		default:
			t.Errorf("%s after the kill is neither the old nor the new file (%s / %s / %s)", p, m, o, n)
		}
	}
	if replaced == 0 {
		t.Error("no file had been replaced when prepare-node-join was killed: the kill came too early to test much")
	}
	for p := range old {
		if _, ok := mid[p]; !ok {
			t.Errorf("%s vanished after the kill", p)
		}
	}
}

// contents maps each regular file under the node's trees to "mode sha256".
func contents(t *testing.T, h *harness.Host, skip []string) map[string]string {
	t.Helper()
	lines, err := clusterlab.Tree(h, skip...)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) == 4 && f[3] != "-" {
			m[f[0]] = f[1] + " " + f[3]
		}
	}
	return m
}

// Scenario 7: one node's sshd is down and another node cannot be reached at
// all: node-add says so for each, within its connect timeout, and joins the
// third node.
func TestUnreachableNodes(t *testing.T) {
	l, ctx := newLab(t, 3)
	ok, down, gone := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	if err := l.TrustHostKeys(l.Nodes...); err != nil {
		t.Fatal(err)
	}
	if err := down.StopSSHD(); err != nil {
		t.Fatal(err)
	}
	// gone's link is down: its packets go nowhere, as with a dead machine.
	if out, err := exec.Command("ip", "-n", gone.Namespace(), "link", "set", "eth0", "down").CombinedOutput(); err != nil {
		t.Fatalf("ip link set eth0 down: %v: %s", err, out)
	}
	r := l.NodeAdd(ctx, "--connect-timeout", "5s", ok.Name, down.Name, gone.Name)
	t.Logf("node-add: %s", r)
	if r.Code != 1 {
		t.Errorf("node-add exited %d, want 1", r.Code)
	}
	if r.Took > 30*time.Second {
		t.Errorf("node-add took %v with --connect-timeout 5s", r.Took)
	}
	for _, n := range []*harness.Host{down, gone} {
		if !strings.Contains(r.Stderr, "node-add: error: "+n.Name+": failed at connect: node unreachable") {
			t.Errorf("node-add's report does not say that %s is unreachable", n.Name)
		}
	}
	checkJoined(t, ctx, l, ok)
	for _, n := range []*harness.Host{down, gone} {
		if _, err := os.Stat(n.Path("/var/lib/ganeti/ssconf_cluster_name")); err == nil {
			t.Errorf("%s got ssconf files", n.Name)
		}
	}
}
