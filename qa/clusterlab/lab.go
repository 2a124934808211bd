package clusterlab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nodejoin/nodejoin/qa/harness"
)

// ClusterName is the name cluster-init gives the lab's cluster.
const ClusterName = "cluster.nodejoin.test"

// Lab is a harness lab with the programs installed and configured.
type Lab struct {
	*harness.Lab
	Bin string // where the installed binaries came from
}

// NodeConfig is the node.json every lab host gets: the harness's sshd check
// and restart scripts (there is no systemd in a lab host), and noded's
// restart and stop named, since lab hosts share the machine's /usr: where Debian's
// ganeti package is installed, the default would be Ganeti's daemon-util.
var NodeConfig = map[string]any{
	"sshd_check_command":          []string{"nj-check-sshd"},
	"sshd_restart_command":        []string{"nj-restart-sshd"},
	"node_daemon_restart_command": []string{"noded", "--restart"},
	"node_daemon_stop_command":    []string{"noded", "--stop"},
}

// New builds the programs (once per process), starts a lab and installs
// them with a node.json on every host. It fails t when anything fails.
func New(t harness.TB, opts harness.Options) *Lab {
	t.Helper()
	harness.Require(t)
	bin, err := Build()
	if err != nil {
		t.Fatalf("qa: %v", err)
	}
	l := &Lab{Lab: harness.New(t, opts), Bin: bin}
	conf, _ := json.MarshalIndent(NodeConfig, "", "  ")
	for _, h := range l.Hosts() {
		if err := h.InstallBinaries(bin); err != nil {
			t.Fatalf("qa: installing the programs on %s: %v", h.Name, err)
		}
		if err := os.WriteFile(h.Path("/etc/nodejoin/node.json"), append(conf, '\n'), 0o644); err != nil {
			t.Fatalf("qa: writing node.json on %s: %v", h.Name, err)
		}
	}
	return l
}

// Result is what a command run in a host did.
type Result struct {
	Stdout, Stderr string
	Code           int // -1: did not run to its end
	Err            error
	Took           time.Duration
}

// OK reports a run that exited 0.
func (r Result) OK() bool { return r.Err == nil && r.Code == 0 }

// String sums the result up for a failure message.
func (r Result) String() string {
	return fmt.Sprintf("exit %d (%v) after %v\nstdout:\n%s\nstderr:\n%s", r.Code, r.Err, r.Took.Round(time.Millisecond), r.Stdout, r.Stderr)
}

// Run runs argv in h.
func Run(ctx context.Context, h *harness.Host, stdin []byte, argv ...string) Result {
	start := time.Now()
	o, e, code, err := h.Run(ctx, stdin, argv...)
	return Result{Stdout: string(o), Stderr: string(e), Code: code, Err: err, Took: time.Since(start)}
}

// Init runs cluster-init on master.
func (l *Lab) Init(ctx context.Context) Result {
	return Run(ctx, l.Master, nil, "cluster-init", "--cluster-name", ClusterName,
		"--master-node", l.Master.Name, "--master-ip", l.Master.IP().String())
}

// NodeAdd runs node-add on master with args (flags, then node names).
func (l *Lab) NodeAdd(ctx context.Context, args ...string) Result {
	return Run(ctx, l.Master, nil, append([]string{"node-add"}, args...)...)
}

// TrustHostKeys adds the nodes' present host keys to master's
// /root/.ssh/known_hosts under their names and addresses, as an operator
// who checked them would.
func (l *Lab) TrustHostKeys(nodes ...*harness.Host) error {
	var b bytes.Buffer
	for _, n := range nodes {
		kh, err := n.KnownHosts()
		if err != nil {
			return err
		}
		for _, line := range strings.Split(strings.TrimSpace(string(kh)), "\n") {
			b.WriteString(n.Name + "," + line + "\n")
		}
	}
	f, err := os.OpenFile(l.Master.Path("/root/.ssh/known_hosts"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b.Bytes())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Names returns the hosts' names.
func Names(hosts []*harness.Host) []string {
	var names []string
	for _, h := range hosts {
		names = append(names, h.Name)
	}
	return names
}
