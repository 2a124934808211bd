package scenarios

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodejoin/nodejoin/qa/clusterlab"
)

// manLines returns the indented lines of a man page that start with
// prefix; with section set, only those of that section.
func manLines(t *testing.T, page, section, prefix string) []string {
	t.Helper()
	root, err := clusterlab.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "doc", page))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := section == ""
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "## ") {
			in = section == "" || l == "## "+section
			continue
		}
		if in && strings.HasPrefix(l, "    "+prefix) {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

// The recovery recipe of node-add(8), RECOVERY, run line by line exactly as
// written there (node3 and c1.example.org replaced by the node's and the
// cluster's names) in a shell on the lab
// master, against a node with a real sshd; then every other recovery line
// that prepare-node-join(8) and node-daemon-setup(8) give. The last step
// records the node, and node-add says that it did.
func TestRecoveryRecipeAsWritten(t *testing.T) {
	recipe := manLines(t, "node-add.8.md", "RECOVERY", "node-add ")
	if len(recipe) != 3 {
		t.Fatalf("node-add(8) RECOVERY has %d command lines, want 3: %q", len(recipe), recipe)
	}
	var others []string
	for _, page := range []string{"prepare-node-join.8.md", "node-daemon-setup.8.md"} {
		for _, l := range manLines(t, page, "EXAMPLES", "node-add --print-payload") {
			if !slices.Contains(recipe, l) && !slices.Contains(others, l) {
				others = append(others, l)
			}
		}
	}
	if len(others) == 0 {
		t.Fatal("prepare-node-join(8) and node-daemon-setup(8) give no recovery line of their own")
	}

	l, ctx := newLab(t, 1)
	node := l.Nodes[0]
	if err := l.TrustHostKeys(node); err != nil {
		t.Fatal(err)
	}
	// An operator's shell: a failing node-add in a pipe fails the line.
	sh := func(line string) clusterlab.Result {
		line = strings.NewReplacer("node3", node.Name, "c1.example.org", clusterlab.ClusterName).Replace(line)
		return clusterlab.Run(ctx, l.Master, nil, "bash", "-e", "-o", "pipefail", "-c", line)
	}
	var last clusterlab.Result
	for i, line := range recipe {
		r := sh(line)
		last = r
		t.Logf("$ %s\n%s%s", line, r.Stdout, r.Stderr)
		if !r.OK() {
			t.Fatalf("recipe step %d as written: %s\n%s", i+1, line, r)
		}
		if i == 0 {
			// What the recipe's second step avoids: plain ssh now refuses
			// the node, which presents the cluster's host key.
			p := clusterlab.Run(ctx, l.Master, nil, "ssh", "-o", "BatchMode=yes", "root@"+node.Name, "true")
			if p.OK() || !strings.Contains(p.Stderr, "REMOTE HOST IDENTIFICATION HAS CHANGED") {
				t.Errorf("plain ssh after prepare-node-join: %s", p)
			}
		}
	}
	if want := node.Name + ": recorded on the master (the node already had the cluster's state) in "; !strings.Contains(last.Stdout, want) {
		t.Errorf("the recording node-add does not say %q", want)
	}
	checkJoined(t, ctx, l, node)

	for _, line := range others {
		if r := sh(line); !r.OK() {
			t.Errorf("man page line as written: %s\n%s", line, r)
		}
	}
	// --print-ssh-command's line reaches the node as the cluster does.
	if r := sh("$(node-add --print-ssh-command node3) hostname"); !r.OK() || strings.TrimSpace(r.Stdout) != node.Name {
		t.Errorf("--print-ssh-command's line: %s", r)
	}
	// Recorded: the plain node-add changes and records nothing.
	r := must(t, "node-add", l.NodeAdd(ctx, node.Name))
	if want := node.Name + ": already joined, nothing changed in "; !strings.Contains(r.Stdout, want) {
		t.Errorf("node-add after the recovery: %s, want %q", r.Stdout, want)
	}
}
