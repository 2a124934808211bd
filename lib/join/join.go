package join

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/nodejoin/nodejoin/lib/cluster"
	"github.com/nodejoin/nodejoin/lib/joindoc"
	"github.com/nodejoin/nodejoin/lib/noded"
	"github.com/nodejoin/nodejoin/lib/sshrun"
)

// Steps of a join, in order; a failure names one.
const (
	StepResolve  = "resolve"
	StepDocument = "document"
	StepConnect  = "connect"
	StepHostKey  = "host-key"
	StepPrepare  = "prepare-node-join"
	StepSetup    = "node-daemon-setup"
	StepNoded    = "node-daemon"
	StepRecord   = "record"
	StepDone     = "done"
)

// Options are the same for every node of a run.
type Options struct {
	Cluster *cluster.Cluster
	SSH     sshrun.Config // Host is set per node
	// Pins maps a node to its pinned host key fingerprints; the "" entry
	// applies to every node.
	Pins              map[string][]string
	PrepareProgram    string // remote program names or paths
	SetupProgram      string
	RemoteArgs        []string // given to both remote programs (e.g. --root DIR, --debug)
	NodeDaemonPort    int
	NodeDaemonTimeout time.Duration // how long to wait for noded to answer
	Timeout           time.Duration // the whole join of one node
	Log               *slog.Logger
	// Progress, if set, is told each step as it starts.
	Progress func(node, step string)
}

// Result is what happened to one node. It holds fingerprints, never keys.
type Result struct {
	Node         string             `json:"node"`
	OK           bool               `json:"ok"`
	Step         string             `json:"step"` // the step that failed, or "done"
	ExitStatus   *int               `json:"exit_status,omitempty"`
	Message      string             `json:"message,omitempty"`
	Hints        []string           `json:"hints,omitempty"`
	PrimaryIP    string             `json:"primary_ip,omitempty"`
	HostKey      string             `json:"host_key,omitempty"` // fingerprint trusted for the connection
	RootKey      string             `json:"root_key,omitempty"` // fingerprint of the node's root key
	Changed      bool               `json:"changed"`
	Connections  int                `json:"ssh_connections"`
	NodedVersion string             `json:"noded_version,omitempty"`
	Seconds      float64            `json:"seconds"`
	StepSeconds  map[string]float64 `json:"step_seconds,omitempty"`
}

// Documents builds both documents for node (secrets included: they go to
// the node on stdin, or to --print-payload's pipe).
func Documents(c *cluster.Cluster, node, ip string) (*joindoc.Prepare, *joindoc.DaemonSetup, error) {
	p, err := c.PrepareDoc()
	if err != nil {
		return nil, nil, err
	}
	d, err := c.DaemonSetupDoc(node, ip)
	if err != nil {
		return nil, nil, err
	}
	return p, d, nil
}

// Resolve returns node's primary IP: node itself if it is an address,
// else its first IPv4 address, else its first address.
func Resolve(ctx context.Context, node string) (string, error) {
	if ip := net.ParseIP(node); ip != nil {
		return ip.String(), nil
	}
	addrs, err := net.DefaultResolver.LookupHost(ctx, node)
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip != nil && ip.To4() != nil {
			return a, nil
		}
	}
	return addrs[0], nil
}

// failure is a failed step.
type failure struct {
	step   string
	status *int
	msg    string
	hints  []string
}

func (f *failure) Error() string { return f.step + ": " + f.msg }

func fail(step string, format string, args ...any) *failure {
	return &failure{step: step, msg: fmt.Sprintf(format, args...)}
}

// Join adds node to the cluster.
func Join(ctx context.Context, o Options, node string) *Result {
	start := time.Now()
	res := &Result{Node: node, StepSeconds: map[string]float64{}}
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	err := join(ctx, o, node, res)
	res.Seconds = time.Since(start).Seconds()
	var f *failure
	if err == nil {
		res.OK, res.Step = true, StepDone
		return res
	}
	if !errors.As(err, &f) {
		f = &failure{step: "unknown", msg: err.Error()}
	}
	res.Step, res.ExitStatus, res.Message, res.Hints = f.step, f.status, f.msg, f.hints
	return res
}

func join(ctx context.Context, o Options, node string, res *Result) error {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	progress := func(step string) {
		if o.Progress != nil {
			o.Progress(node, step)
		}
		log.Info("step", "node", node, "step", step)
	}
	timed := func(step string, t time.Time) { res.StepSeconds[step] = time.Since(t).Seconds() }

	progress(StepResolve)
	if err := cluster.CheckName(node); err != nil && net.ParseIP(node) == nil {
		return fail(StepResolve, "%v", err)
	}
	ip, err := Resolve(ctx, node)
	if err != nil {
		return fail(StepResolve, "cannot resolve %s: %v", node, err)
	}
	res.PrimaryIP = ip

	prep, setup, err := Documents(o.Cluster, node, ip)
	if err != nil {
		return fail(StepDocument, "%v", err)
	}
	prepJSON, err := json.Marshal(prep)
	if err != nil {
		return fail(StepDocument, "%v", err)
	}
	setupJSON, err := json.Marshal(setup)
	if err != nil {
		return fail(StepDocument, "%v", err)
	}

	progress(StepConnect)
	t := time.Now()
	cfg := o.SSH
	cfg.Host = node
	cfg.HostKeyFingerprints = append(append([]string(nil), o.Pins[""]...), o.Pins[node]...)
	cfg.KnownHostsFiles = append(cfg.KnownHostsFiles, o.Cluster.Path(cluster.KnownHosts))
	cfg.Log = log
	conn, err := sshrun.Dial(ctx, cfg)
	timed(StepConnect, t)
	if conn != nil {
		res.Connections = conn.Attempts()
	} else {
		res.Connections = 1
	}
	if err != nil {
		var hke *sshrun.HostKeyError
		if errors.As(err, &hke) {
			return &failure{step: StepHostKey, msg: err.Error() + "; no login was attempted", hints: hke.Hints()}
		}
		f := fail(StepConnect, "%v", err)
		switch {
		case errors.Is(err, sshrun.ErrAuth):
			f.hints = []string{"node-add logs in with the keys the master's ssh uses (ssh-agent, ~/.ssh/id_*); put the master's root key in the node's authorized_keys first"}
		case errors.Is(err, sshrun.ErrUnreachable):
			f.hints = []string{"check that sshd runs on the node and that the port (--ssh-port) is right"}
		}
		return f
	}
	defer func() { _ = conn.Close() }() // idempotent; closed below once both programs ran
	res.HostKey = conn.HostKey().Fingerprint()

	progress(StepPrepare)
	t = time.Now()
	pres, err := runProgram(ctx, conn, StepPrepare, append([]string{o.PrepareProgram}, o.RemoteArgs...), prepJSON)
	timed(StepPrepare, t)
	if err != nil {
		return err
	}
	if pres.RootPublicKey == "" {
		return fail(StepPrepare, "the result names no root public key")
	}
	rk, err := parseKeyLine(pres.RootPublicKey)
	if err != nil {
		return fail(StepPrepare, "the result's root public key: %v", err)
	}
	res.RootKey = rk.Fingerprint()
	// The node must now present the cluster host keys.
	for _, k := range prep.SSHHostKey {
		want, _ := parseKeyLine(k.Public)
		if got := pres.HostKeyFingerprints[k.Kind]; got != want.Fingerprint() {
			return fail(StepPrepare, "the node reports %s host key %q, not the cluster's %s", k.Kind, got, want.Fingerprint())
		}
	}
	res.Changed = pres.Changed

	progress(StepSetup)
	t = time.Now()
	sres, err := runProgram(ctx, conn, StepSetup, append([]string{o.SetupProgram}, o.RemoteArgs...), setupJSON)
	timed(StepSetup, t)
	if err != nil {
		return err
	}
	res.Changed = res.Changed || sres.Changed
	_ = conn.Close() // done with SSH before waiting for noded

	progress(StepNoded)
	t = time.Now()
	wctx := ctx
	if o.NodeDaemonTimeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, o.NodeDaemonTimeout)
		defer cancel()
	}
	client := noded.NewClient(o.Cluster.Server.Cert, o.Cluster.Client)
	v, err := client.WaitVersion(wctx, ip, o.NodeDaemonPort, 250*time.Millisecond)
	timed(StepNoded, t)
	if err != nil {
		f := fail(StepNoded, "the node daemon on %s did not answer within %s: %v",
			net.JoinHostPort(ip, fmt.Sprint(o.NodeDaemonPort)), o.NodeDaemonTimeout, err)
		f.hints = []string{"the node is configured but not recorded; see the node daemon's log on the node (/var/log/nodejoin/noded.log), then run node-add again"}
		return f
	}
	if v.ClusterName != o.Cluster.Settings.ClusterName {
		return fail(StepNoded, "the node daemon answers for cluster %q, not %q", v.ClusterName, o.Cluster.Settings.ClusterName)
	}
	res.NodedVersion = v.Version

	progress(StepRecord)
	if err := o.Cluster.RecordNode(cluster.Node{Name: node, PrimaryIP: ip, RootPublicKey: pres.RootPublicKey}); err != nil {
		return fail(StepRecord, "%v", err)
	}
	return nil
}

// runProgram runs one node-side program and reads its result.
func runProgram(ctx context.Context, conn *sshrun.Conn, step string, argv []string, doc []byte) (*joindoc.Result, error) {
	r, err := conn.Run(ctx, argv, doc)
	if err != nil {
		f := fail(step, "%v", err)
		if errors.Is(err, sshrun.ErrTimeout) {
			f.hints = []string{"the program may still be running on the node; it finishes or rolls back on its own, then run node-add again"}
		}
		return nil, f
	}
	if r.Status != 0 {
		status := r.Status
		f := &failure{step: step, status: &status, msg: fmt.Sprintf("%s exited %d (%s)%s", argv[0], status, meaning(status), remoteErrors(r.Stderr))}
		switch status {
		case 3:
			f.msg += "; no changes were made on the node"
		case 1:
			f.msg += "; the node was put back as it was"
		case 127:
			flag := map[string]string{StepPrepare: "--prepare-program", StepSetup: "--setup-program"}[step]
			f.hints = []string{fmt.Sprintf("%s is not on the login user's PATH on the node; install nodejoin there or name its path with %s", argv[0], flag)}
		}
		return nil, f
	}
	res, err := joindoc.DecodeResult(bytes.NewReader(r.Stdout))
	if err != nil {
		return nil, fail(step, "%s printed no valid result on standard output: %v", argv[0], err)
	}
	if res.Program != "" && res.Program != step {
		return nil, fail(step, "the result is from %q, not %s", res.Program, step)
	}
	return res, nil
}

func meaning(status int) string {
	switch status {
	case 1:
		return "failed while applying"
	case 2:
		return "usage"
	case 3:
		return "input rejected"
	case 126, 127:
		return "not found or not executable"
	}
	return "unknown status"
}

// remoteErrors keeps the remote program's "error:" and "hint:" lines
// (the lib/cli contract), else its last line; each line bounded.
func remoteErrors(stderr []byte) string {
	var keep []string
	all := strings.Split(strings.TrimSpace(string(stderr)), "\n")
	for _, l := range all {
		if strings.Contains(l, ": error: ") || strings.Contains(l, ": hint: ") {
			keep = append(keep, clip(l))
		}
	}
	if len(keep) == 0 && len(all) > 0 && all[len(all)-1] != "" {
		keep = append(keep, clip(all[len(all)-1]))
	}
	if len(keep) == 0 {
		return ""
	}
	return ": " + strings.Join(keep, "; ")
}

func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

func parseKeyLine(line string) (sshrun.HostKey, error) {
	f := strings.Fields(line)
	if len(f) < 2 {
		return sshrun.HostKey{}, errors.New("not an SSH public key line")
	}
	return sshrun.HostKey{Type: f[0], Base64: f[1]}, nil
}
