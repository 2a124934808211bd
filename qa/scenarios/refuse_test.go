package scenarios

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/nodejoin/nodejoin/qa/clusterlab"
	"github.com/nodejoin/nodejoin/qa/harness"
)

// Scenario 3: a node that belongs to another cluster is refused, and the
// node is exactly as it was.
func TestRefuseOtherCluster(t *testing.T) {
	l, ctx := newLab(t, 1)
	node := l.Nodes[0]
	if err := l.TrustHostKeys(node); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(node.Path("/var/lib/ganeti/ssconf_cluster_name"), []byte("other.example.org\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	hash, listing, starts := treeHash(t, node), tree(t, node), sshdStarts(node)
	r := l.NodeAdd(ctx, node.Name)
	t.Logf("node-add: %s", r)
	if r.OK() {
		t.Fatal("node-add of a node of another cluster succeeded")
	}
	if r.Code != 1 || !strings.Contains(r.Stderr, `prepare-node-join exited 3 (input rejected)`) ||
		!strings.Contains(r.Stderr, `does not match this node's cluster "other.example.org"`) {
		t.Errorf("node-add's report does not say that the node is another cluster's (prepare-node-join exit 3)")
	}
	if got := treeHash(t, node); got != hash {
		t.Errorf("the refused node changed:\nbefore:\n%s\nafter:\n%s", listing, tree(t, node))
	}
	if sshdStarts(node) != starts {
		t.Error("the refused node's sshd was restarted")
	}
	if _, err := l.NodedVersion(ctx, node); err == nil {
		t.Error("a node daemon answers on the refused node")
	}
}

// Scenario 4: an unknown host key without a pin is refused with its
// fingerprint; a host key that changed since it was trusted is refused too.
// Neither node is touched: the refusal comes before any login.
func TestRefuseHostKeys(t *testing.T) {
	l, ctx := newLab(t, 2)
	unknown, changed := l.Nodes[0], l.Nodes[1]

	t.Run("unknown", func(t *testing.T) {
		fp := fingerprint(t, ctx, unknown, "/etc/ssh/ssh_host_ed25519_key.pub")
		fpRSA := fingerprint(t, ctx, unknown, "/etc/ssh/ssh_host_rsa_key.pub")
		hash := treeHash(t, unknown)
		r := l.NodeAdd(ctx, unknown.Name)
		t.Logf("node-add: %s", r)
		if r.OK() {
			t.Fatal("node-add accepted an unknown host key without a pin")
		}
		if !strings.Contains(r.Stderr, "is unknown: fingerprint "+fp) && !strings.Contains(r.Stderr, "is unknown: fingerprint "+fpRSA) {
			t.Errorf("node-add's report does not show the node's fingerprint %s (or %s)", fp, fpRSA)
		}
		if !strings.Contains(r.Stderr, "no login was attempted") || unknown.CountSSHConnections() != 1 {
			t.Errorf("node-add logged in, or connected %d times, want one connection and no login", unknown.CountSSHConnections())
		}
		if treeHash(t, unknown) != hash {
			t.Error("the node changed")
		}
	})

	t.Run("changed", func(t *testing.T) {
		if err := l.TrustHostKeys(changed); err != nil {
			t.Fatal(err)
		}
		oldFP := fingerprint(t, ctx, changed, "/etc/ssh/ssh_host_ed25519_key.pub")
		newHostKeys(t, ctx, changed)
		newFP := fingerprint(t, ctx, changed, "/etc/ssh/ssh_host_ed25519_key.pub")
		hash := treeHash(t, changed)
		r := l.NodeAdd(ctx, changed.Name)
		t.Logf("node-add: %s", r)
		if r.OK() {
			t.Fatal("node-add accepted a changed host key")
		}
		if !strings.Contains(r.Stderr, "has changed: known ") || !strings.Contains(r.Stderr, oldFP) || !strings.Contains(r.Stderr, "offered "+newFP) {
			t.Errorf("node-add's report does not show the known %s and the offered %s", oldFP, newFP)
		}
		if treeHash(t, changed) != hash {
			t.Error("the node changed")
		}
	})
}

// newHostKeys gives h new host keys and restarts its sshd on them, as a
// reinstalled machine or an impostor at its address would present.
func newHostKeys(t *testing.T, ctx context.Context, h *harness.Host) {
	t.Helper()
	for _, k := range []string{"ed25519", "rsa"} {
		f := "/etc/ssh/ssh_host_" + k + "_key"
		must(t, "rm", clusterlab.Run(ctx, h, nil, "rm", "-f", f, f+".pub"))
		must(t, "ssh-keygen", clusterlab.Run(ctx, h, nil, "ssh-keygen", "-q", "-N", "", "-t", k, "-b", map[string]string{"ed25519": "256", "rsa": "2048"}[k], "-f", f))
	}
	must(t, "nj-restart-sshd", clusterlab.Run(ctx, h, nil, "nj-restart-sshd"))
}
