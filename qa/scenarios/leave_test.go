package scenarios

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/nodejoin/nodejoin/qa/clusterlab"
	"github.com/nodejoin/nodejoin/qa/harness"
)

// masterTrees are the master's paths a join may touch: the data directory
// (ssconf, known_hosts, ganeti_pub_keys), the state directory, root's home
// and the SSH configuration (callback grants).
var masterTrees = []string{"/var/lib/ganeti", "/var/lib/nodejoin", "/root", "/etc/ssh", "/etc/nodejoin"}

// masterSkip are what a join legitimately leaves on the master after the
// node is gone: join-service's slot store (a bbolt file, whose pages are
// not byte-comparable after a write and a delete; its slots are checked
// through the admin API instead). Logs are outside masterTrees.
var masterSkip = []string{"/var/lib/nodejoin/join-service"}

// listTree lists every entry under roots in h: path, mode, owner, digest.
func listTree(t *testing.T, h *harness.Host, roots []string, skip []string) string {
	t.Helper()
	var lines []string
	for _, top := range roots {
		base := h.Path(top)
		err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(base, p)
			node := filepath.Join(top, rel)
			for _, s := range skip {
				if node == s || strings.HasPrefix(node, s+"/") {
					return nil
				}
			}
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			sum := "-"
			if fi.Mode().IsRegular() {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				s := sha256.Sum256(b)
				sum = hex.EncodeToString(s[:8])
			}
			lines = append(lines, fmt.Sprintf("%s %v %s", node, fi.Mode(), sum))
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func nodeTree(t *testing.T, h *harness.Host, skip ...string) string {
	return listTree(t, h, clusterlab.NodeTrees, skip)
}

func masterTree(t *testing.T, h *harness.Host) string {
	return listTree(t, h, masterTrees, masterSkip)
}

// sameTree fails t with a diff of the lines that differ.
func sameTree(t *testing.T, what, before, after string) {
	t.Helper()
	if before == after {
		return
	}
	b, a := map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(before, "\n") {
		b[l] = true
	}
	for _, l := range strings.Split(after, "\n") {
		a[l] = true
	}
	var diff []string
	for l := range b {
		if !a[l] {
			diff = append(diff, "- "+l)
		}
	}
	for l := range a {
		if !b[l] {
			diff = append(diff, "+ "+l)
		}
	}
	sort.Strings(diff)
	t.Errorf("%s differs from before the join:\n%s", what, strings.Join(diff, "\n"))
}

// removeResult is node-remove's JSON result, as far as the tests read it.
type removeResult struct {
	OK         bool `json:"ok"`
	Reached    bool `json:"reached"`
	Unrecorded bool `json:"unrecorded"`
	Cleanup    *struct {
		Stopped []string `json:"stopped"`
		Kept    []struct {
			Path, Reason string
		} `json:"kept"`
	} `json:"cleanup"`
	SlotsRemoved []string `json:"slots_removed"`
	Warnings     []string `json:"warnings"`
}

func nodeRemove(t *testing.T, ctx context.Context, l *clusterlab.Lab, args ...string) (removeResult, clusterlab.Result) {
	t.Helper()
	r := clusterlab.Run(ctx, l.Master, nil, append([]string{"node-remove"}, args...)...)
	var res removeResult
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil {
		t.Fatalf("node-remove's result: %v\n%s", err, r)
	}
	return res, r
}

// nodedStopped checks that node's noded is gone and answers no more.
func nodedStopped(t *testing.T, ctx context.Context, l *clusterlab.Lab, node *harness.Host) {
	t.Helper()
	if pid := nodedPID(node); pid != "" {
		t.Errorf("%s: noded pid file still names %s", node.Name, pid)
	}
	if v, err := l.NodedVersion(ctx, node); err == nil {
		t.Errorf("%s: noded still answers (%s)", node.Name, v)
	}
}

// Join then remove, push mode: node-add joins node while other is already
// a member; node-remove cleans node over one SSH connection and removes it
// on the master. Both node's tree and the master's are then as before the
// join, byte for byte and mode for mode; other's ssconf no longer names
// node; node's noded is stopped and its sshd presents its own host key.
// The same name then joins again.
func TestLeavePushJoin(t *testing.T) {
	l, ctx := newLab(t, 2)
	node, other := l.Nodes[0], l.Nodes[1]
	if err := l.TrustHostKeys(node, other); err != nil {
		t.Fatal(err)
	}
	must(t, "node-add other", l.NodeAdd(ctx, other.Name))
	nodeBefore, masterBefore := nodeTree(t, node), masterTree(t, l.Master)
	ownKey := fingerprint(t, ctx, node, "/etc/ssh/ssh_host_ed25519_key.pub")

	must(t, "node-add", l.NodeAdd(ctx, node.Name))
	checkJoined(t, ctx, l, node)
	conns := node.CountSSHConnections()
	res, r := nodeRemove(t, ctx, l, node.Name)
	t.Logf("node-remove took %v:\n%s%s", r.Took, r.Stdout, r.Stderr)
	if !r.OK() || !res.OK || !res.Reached || !res.Unrecorded || res.Cleanup == nil || len(res.Cleanup.Kept) != 0 {
		t.Fatalf("node-remove: %s", r)
	}
	if got := node.CountSSHConnections() - conns; got != 1 {
		t.Errorf("node-remove took %d SSH connections to %s, want 1", got, node.Name)
	}
	sameTree(t, node.Name+"'s tree", nodeBefore, nodeTree(t, node))
	sameTree(t, "the master's tree", masterBefore, masterTree(t, l.Master))
	nodedStopped(t, ctx, l, node)
	if got := fingerprint(t, ctx, node, "/etc/ssh/ssh_host_ed25519_key.pub"); got != ownKey {
		t.Errorf("%s: host key %s, want its own %s", node.Name, got, ownKey)
	}
	sc := must(t, "ssh-keyscan", clusterlab.Run(ctx, l.Master, nil, "ssh-keyscan", "-t", "ed25519", node.Name))
	if strings.Contains(readFile(t, l.Master.Path("/etc/ssh/ssh_host_ed25519_key.pub")), strings.Fields(sc.Stdout + " x x")[2]) {
		t.Errorf("%s's sshd still presents the cluster's host key", node.Name)
	}
	if ss, err := clusterlab.Ssconf(other); err != nil || strings.Contains(ss["node_list"], node.Name) {
		t.Errorf("%s's ssconf_node_list %q (%v) still names %s", other.Name, ss["node_list"], err, node.Name)
	}

	// Re-join the same name: its own host key is the one master trusts.
	must(t, "node-add again", l.NodeAdd(ctx, node.Name))
	checkJoined(t, ctx, l, node)
}

// What the operator changed on the node after the join is kept and
// reported: a line of theirs in root's authorized_keys stays (the
// cluster's lines go), and the rest of the tree is as before the join.
func TestLeaveKeepsOperatorChange(t *testing.T) {
	l, ctx := newLab(t, 1)
	node := l.Nodes[0]
	if err := l.TrustHostKeys(node); err != nil {
		t.Fatal(err)
	}
	const ak = "/root/.ssh/authorized_keys"
	nodeBefore, masterBefore := nodeTree(t, node, ak), masterTree(t, l.Master)
	akBefore := readFile(t, node.Path(ak))
	must(t, "node-add", l.NodeAdd(ctx, node.Name))

	const mine = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHa1EKnTdFQ0dCPs4VvV0YXZbRHgzSbjVvXrAAhs7Rle operator@laptop\n"
	f, err := os.OpenFile(node.Path(ak), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(mine); err != nil {
		t.Fatal(err)
	}
	f.Close()

	res, r := nodeRemove(t, ctx, l, node.Name)
	if !r.OK() || !res.OK || res.Cleanup == nil || len(res.Cleanup.Kept) != 1 || res.Cleanup.Kept[0].Path != ak ||
		!strings.Contains(r.Stderr, "node-remove: warning: kept on the node: "+ak+" (changed since the join") {
		t.Fatalf("node-remove: %s", r)
	}
	if got := readFile(t, node.Path(ak)); got != akBefore+mine {
		t.Errorf("%s after: %q, want the node's own lines and the operator's", ak, got)
	}
	sameTree(t, node.Name+"'s tree", nodeBefore, nodeTree(t, node, ak))
	sameTree(t, "the master's tree", masterBefore, masterTree(t, l.Master))
}

// Join then remove, pull mode: node-join through join-service; node-remove
// cleans the node and also removes its slot; both trees as before; a new
// slot for the same name joins it again.
func TestLeavePullJoin(t *testing.T) {
	l, ctx := newLab(t, 1)
	node := l.Nodes[0]
	if err := l.TrustHostKeys(node); err != nil {
		t.Fatal(err)
	}
	serveJoinService(t, ctx, l.Master)
	nodeBefore, masterBefore := nodeTree(t, node), masterTree(t, l.Master)

	join := func() {
		t.Helper()
		_, bootParam := slotAdd(t, ctx, l.Master, `{"node_name": "`+node.Name+`", "ttl": "10m"}`)
		writeRootFile(t, node, "/run/cmdline", "ro "+bootParam+"\n")
		must(t, "node-join", clusterlab.Run(ctx, node, nil, "node-join", "--boot-param", "--cmdline", "/run/cmdline", "--timeout", "1m"))
		if ss, err := clusterlab.Ssconf(l.Master); err != nil || !strings.Contains(ss["node_list"], node.Name) {
			t.Fatalf("the master's ssconf_node_list %q (%v) lacks %s", ss["node_list"], err, node.Name)
		}
	}
	join()
	res, r := nodeRemove(t, ctx, l, node.Name)
	t.Logf("node-remove took %v:\n%s%s", r.Took, r.Stdout, r.Stderr)
	if !r.OK() || !res.OK || !res.Reached || !res.Unrecorded || len(res.SlotsRemoved) != 1 {
		t.Fatalf("node-remove: %s", r)
	}
	if list := must(t, "slot list", clusterlab.Run(ctx, l.Master, nil, "join-service", "slot", "list")); strings.Contains(list.Stdout, node.Name) {
		t.Errorf("join-service still has a slot for %s:\n%s", node.Name, list.Stdout)
	}
	sameTree(t, node.Name+"'s tree", nodeBefore, nodeTree(t, node))
	sameTree(t, "the master's tree", masterBefore, masterTree(t, l.Master))
	nodedStopped(t, ctx, l, node)
	join()
	checkJoined(t, ctx, l, node)
}

// A node that is down: node-remove does the master's side, says so, and
// exits 0; when the node is back, node-cleanup run there by hand (the
// command the warning gives) leaves it as before the join.
func TestRemoveDownNode(t *testing.T) {
	l, ctx := newLab(t, 1)
	node := l.Nodes[0]
	if err := l.TrustHostKeys(node); err != nil {
		t.Fatal(err)
	}
	nodeBefore, masterBefore := nodeTree(t, node), masterTree(t, l.Master)
	must(t, "node-add", l.NodeAdd(ctx, node.Name))
	if err := node.StopSSHD(); err != nil {
		t.Fatal(err)
	}
	res, r := nodeRemove(t, ctx, l, node.Name)
	want := `when it is back, run echo '{"cluster_name": "` + clusterlab.ClusterName + `"}' | node-cleanup on it`
	if !r.OK() || !res.OK || res.Reached || !res.Unrecorded || !strings.Contains(r.Stderr, "does not answer") || !strings.Contains(r.Stderr, want) {
		t.Fatalf("node-remove of a node that is down: %s", r)
	}
	sameTree(t, "the master's tree", masterBefore, masterTree(t, l.Master))

	// Back up: the operator runs the command the warning gave.
	if err := node.StartSSHD(); err != nil {
		t.Fatal(err)
	}
	c := must(t, "node-cleanup", clusterlab.Run(ctx, node, []byte(`{"cluster_name": "`+clusterlab.ClusterName+`"}`), "node-cleanup"))
	if !strings.Contains(c.Stdout, `"changed": true`) {
		t.Errorf("node-cleanup: %s", c)
	}
	sameTree(t, node.Name+"'s tree", nodeBefore, nodeTree(t, node))
	nodedStopped(t, ctx, l, node)
}
