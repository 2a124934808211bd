package scenarios

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/qa/clusterlab"
	"github.com/nodejoin/nodejoin/qa/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// newLab starts a lab of n nodes with the programs installed and a cluster
// initialised on master.
func newLab(t *testing.T, n int) (*clusterlab.Lab, context.Context) {
	t.Helper()
	harness.Require(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	l := clusterlab.New(t, harness.Options{Nodes: n})
	if r := l.Init(ctx); !r.OK() {
		t.Fatalf("cluster-init: %s", r)
	}
	return l, ctx
}

// must fails the test unless r exited 0.
func must(t *testing.T, what string, r clusterlab.Result) clusterlab.Result {
	t.Helper()
	if !r.OK() {
		t.Fatalf("%s: %s", what, r)
	}
	return r
}

// treeHash fails the test if the node's tree cannot be read.
func treeHash(t *testing.T, h *harness.Host) string {
	t.Helper()
	s, err := clusterlab.TreeHash(h)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tree is the node's tree, for a diff in failure messages.
func tree(t *testing.T, h *harness.Host) string {
	t.Helper()
	lines, err := clusterlab.Tree(h)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// sshdStarts counts how often the host's sshd started listening: a restart
// (nj-restart-sshd, SIGHUP) adds one.
func sshdStarts(h *harness.Host) int {
	return strings.Count(h.SSHDLog(), "Server listening on")
}

// nodedPID returns the pid in the node's noded pid file, or "".
func nodedPID(h *harness.Host) string {
	b, _ := os.ReadFile(h.Path("/run/nodejoin/noded.pid"))
	return strings.TrimSpace(string(b))
}

// fingerprint is clusterlab.Fingerprint that fails the test.
func fingerprint(t *testing.T, ctx context.Context, h *harness.Host, path string) string {
	t.Helper()
	fp, err := clusterlab.Fingerprint(ctx, h, path)
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

// checkJoined checks what must hold on a node after a join: it presents
// the cluster host keys (the master's), the master logs in with the cluster
// known_hosts alias and strict checking, modes and owners are Ganeti's,
// ssconf is equal on both sides, and noded answers over mutual TLS.
func checkJoined(t *testing.T, ctx context.Context, l *clusterlab.Lab, node *harness.Host) {
	t.Helper()
	for _, k := range []string{"/etc/ssh/ssh_host_ed25519_key.pub", "/etc/ssh/ssh_host_rsa_key.pub"} {
		if got, want := fingerprint(t, ctx, node, k), fingerprint(t, ctx, l.Master, k); got != want {
			t.Errorf("%s: %s has fingerprint %s, want the cluster's %s", node.Name, k, got, want)
		}
	}
	// The key sshd now presents is the cluster's: ssh-keyscan.
	r := must(t, "ssh-keyscan", clusterlab.Run(ctx, l.Master, nil, "ssh-keyscan", "-t", "ed25519", node.Name))
	if f := strings.Fields(r.Stdout); len(f) < 3 || !strings.Contains(readFile(t, l.Master.Path("/etc/ssh/ssh_host_ed25519_key.pub")), f[2]) {
		t.Errorf("%s: sshd presents %q, want the cluster's ed25519 host key", node.Name, r.Stdout)
	}
	if r := l.SSHAsCluster(ctx, node, "hostname"); !r.OK() || strings.TrimSpace(r.Stdout) != node.Name {
		t.Errorf("%s: ssh with the cluster known_hosts alias: %s", node.Name, r)
	}
	want := map[string]string{
		"/etc/ssh/ssh_host_ed25519_key":       "600 root:root",
		"/etc/ssh/ssh_host_ed25519_key.pub":   "644 root:root",
		"/etc/ssh/ssh_host_rsa_key":           "600 root:root",
		"/etc/ssh/ssh_host_rsa_key.pub":       "644 root:root",
		"/root/.ssh":                          "700 root:root",
		"/root/.ssh/authorized_keys":          "600 root:root",
		"/var/lib/ganeti/hmac.key":            "440 root:root",
		"/var/lib/ganeti/server.pem":          "440 root:root",
		"/var/lib/ganeti/client.pem":          "440 root:root",
		"/var/lib/ganeti/ssconf_cluster_name": "444 root:root",
		"/var/lib/ganeti/ssconf_node_list":    "444 root:root",
	}
	var paths []string
	for p := range want {
		paths = append(paths, p)
	}
	got, err := clusterlab.Stat(ctx, node, paths...)
	if err != nil {
		t.Fatal(err)
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: stat %s = %q, want %q", node.Name, p, got[p], w)
		}
	}
	if _, err := os.Stat(node.Path("/var/lib/nodejoin/journal.json")); err == nil {
		t.Errorf("%s: a journal is left after the join", node.Name)
	}
	ms, err := clusterlab.Ssconf(l.Master)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := clusterlab.Ssconf(node)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range ms {
		if ns[k] != v {
			t.Errorf("%s: ssconf_%s = %q, master has %q", node.Name, k, ns[k], v)
		}
	}
	for k := range ns {
		if _, ok := ms[k]; !ok {
			t.Errorf("%s: ssconf_%s is not on the master", node.Name, k)
		}
	}
	if !strings.Contains(ms["node_list"], node.Name+"\n") {
		t.Errorf("master's ssconf_node_list %q lacks %s", ms["node_list"], node.Name)
	}
	v, err := l.NodedVersion(ctx, node)
	if err != nil {
		t.Errorf("%s: noded: %v", node.Name, err)
	} else if !strings.Contains(v, clusterlab.ClusterName) {
		t.Errorf("%s: noded /version = %s, want cluster %s", node.Name, v, clusterlab.ClusterName)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
