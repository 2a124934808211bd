package scenarios

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/nodejoin/nodejoin/internal/master/install"
	"github.com/nodejoin/nodejoin/qa/clusterlab"
)

// Scenario: node-add --install on nodes that lack the node-side programs.
// node1 gets every program (the master's bytes, 0755 root:root, nothing
// else left in the directory) and joins, over one SSH connection; the
// rerun installs nothing and leaves the files as they were. node2's
// transfer is corrupted on its way (an ssh on the master that changes
// bytes of what it sends): the node refuses it by its sha256, node-add
// fails at the install step, and node2 has no program, no temporary file
// and no cluster state.
func TestInstallOnBareNode(t *testing.T) {
	l, ctx := newLab(t, 2)
	node1, node2 := l.Nodes[0], l.Nodes[1]
	for _, n := range l.Nodes {
		for _, p := range install.Programs {
			if err := os.Remove(n.Path("/usr/local/sbin/" + p)); err != nil {
				t.Fatal(err)
			}
		}
		if r := clusterlab.Run(ctx, n, nil, "sh", "-c", "command -v noded"); r.OK() {
			t.Fatalf("%s still has noded at %s", n.Name, r.Stdout)
		}
	}
	binDir := node1.Path("/usr/local/sbin")
	before := listNames(t, binDir)
	if err := l.TrustHostKeys(l.Nodes...); err != nil {
		t.Fatal(err)
	}

	conns := node1.CountSSHConnections()
	r := must(t, "node-add --install", l.NodeAdd(ctx, "--install", "--output", "json", node1.Name))
	if got := node1.CountSSHConnections() - conns; got != 1 {
		t.Errorf("%s: node-add --install took %d SSH connections, want 1", node1.Name, got)
	}
	t.Logf("node-add --install: %s", r.Took)
	if got := installed(t, r.Stdout); !slices.Equal(got, install.Programs) {
		t.Errorf("node-add --install reports installing %q, want %q", got, install.Programs)
	}
	if got, want := listNames(t, binDir), slices.Sorted(slices.Values(append(before, install.Programs...))); !slices.Equal(got, want) {
		t.Errorf("%s: /usr/local/sbin holds %q, want %q (no temporary file)", node1.Name, got, want)
	}
	inodes := map[string]uint64{}
	for _, p := range install.Programs {
		want, err := os.ReadFile(filepath.Join(l.Bin, p))
		if err != nil {
			t.Fatal(err)
		}
		fp := filepath.Join(binDir, p)
		got, err := os.ReadFile(fp)
		if err != nil || sha256.Sum256(got) != sha256.Sum256(want) {
			t.Errorf("%s: %s is not the master's program (%v)", node1.Name, p, err)
		}
		fi, err := os.Stat(fp)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != 0o755 || st.Uid != 0 || st.Gid != 0 {
			t.Errorf("%s: %s has mode %v owner %d:%d, want 0755 root:root", node1.Name, p, fi.Mode(), st.Uid, st.Gid)
		}
		inodes[p] = st.Ino
	}
	checkJoined(t, ctx, l, node1)

	// The rerun finds the master's version on the node: nothing is sent.
	conns = node1.CountSSHConnections()
	r = must(t, "node-add --install again", l.NodeAdd(ctx, "--install", "--output", "json", node1.Name))
	t.Logf("node-add --install again: %s", r.Took)
	if got := installed(t, r.Stdout); len(got) != 0 {
		t.Errorf("the rerun installed %q, want nothing", got)
	}
	if got := node1.CountSSHConnections() - conns; got != 1 {
		t.Errorf("%s: the rerun took %d SSH connections, want 1", node1.Name, got)
	}
	for _, p := range install.Programs {
		fi, err := os.Stat(filepath.Join(binDir, p))
		if err != nil || fi.Sys().(*syscall.Stat_t).Ino != inodes[p] {
			t.Errorf("%s: the rerun replaced %s (%v)", node1.Name, p, err)
		}
	}

	// A corrupted transfer: the master's ssh changes every NUL byte it
	// sends (the documents have none; every program has many).
	wrapper := l.Master.Path("/usr/local/sbin/ssh")
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\ntr '\\000' '\\001' | exec /usr/bin/ssh \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	bin2 := node2.Path("/usr/local/sbin")
	before2 := listNames(t, bin2)
	r = l.NodeAdd(ctx, "--install", node2.Name)
	if err := os.Remove(wrapper); err != nil {
		t.Fatal(err)
	}
	if r.Code != 1 || !strings.Contains(r.Stderr, "node-add: error: "+node2.Name+": failed at install: the program did not arrive whole: ") ||
		!strings.Contains(r.Stderr, "/usr/local/sbin/prepare-node-join: received ") || !strings.Contains(r.Stderr, "nothing was installed") {
		t.Errorf("node-add --install over a corrupting link: %s", r)
	}
	if got := listNames(t, bin2); !slices.Equal(got, before2) {
		t.Errorf("%s: /usr/local/sbin holds %q after the refused transfer, want %q", node2.Name, got, before2)
	}
	if _, err := os.Stat(node2.Path("/var/lib/ganeti/server.pem")); err == nil {
		t.Errorf("%s: has server.pem: the join went on after the refused transfer", node2.Name)
	}
}

// installed is the programs the --output json node line says it installed.
func installed(t *testing.T, stdout string) []string {
	t.Helper()
	var line struct {
		Node        string             `json:"node"`
		Installed   []install.Action   `json:"installed"`
		StepSeconds map[string]float64 `json:"step_seconds"`
	}
	first, _, _ := strings.Cut(stdout, "\n")
	if err := json.NewDecoder(bytes.NewReader([]byte(first))).Decode(&line); err != nil || line.Node == "" {
		t.Fatalf("node-add --output json: first line %q: %v", first, err)
	}
	t.Logf("install step %.3f s, the whole join %.3f s", line.StepSeconds["install"], sum(line.StepSeconds))
	var names []string
	for _, a := range line.Installed {
		names = append(names, a.Name)
	}
	return names
}

func listNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return slices.Sorted(slices.Values(names))
}

func sum(m map[string]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}
