package join

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/master/install"
	"github.com/nodejoin/nodejoin/internal/master/sshrun"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
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
	// Tunnels maps a node behind a machine callback to its port on the
	// master's localhost (callback-grant's record): it is reached there,
	// its host key checked under its name (callback.go).
	Tunnels map[string]int
	// TunnelSsconf is the ssconf each node joined through its tunnel in
	// this run was given (TunnelSsconf(results)); the push skips such a
	// node while they are still the master's.
	TunnelSsconf map[string]map[string]string
	Install      *Install // node-add --install (install.go); nil: the node has the programs
}

// Result is what happened to one node. It holds fingerprints, never keys.
type Result struct {
	Node       string   `json:"node"`
	OK         bool     `json:"ok"`
	Step       string   `json:"step"` // the step that failed, or "done"
	ExitStatus *int     `json:"exit_status,omitempty"`
	Message    string   `json:"message,omitempty"`
	Hints      []string `json:"hints,omitempty"`
	PrimaryIP  string   `json:"primary_ip,omitempty"`
	// HostKey is the fingerprint of the node's host key: the cluster's once
	// prepare-node-join has run, else the key the connection trusted.
	HostKey string `json:"host_key,omitempty"`
	// VerifiedHostKey is the key the connection was verified with, when
	// it is not HostKey (the node's own key before it joined).
	VerifiedHostKey string `json:"verified_host_key,omitempty"`
	RootKey         string `json:"root_key,omitempty"` // fingerprint of the node's root key
	Changed         bool   `json:"changed"`            // the node-side programs changed the node
	// Recorded says that this run recorded the node on the master (it
	// was not, or not with this root key or address, recorded before).
	Recorded     bool               `json:"recorded"`
	Connections  int                `json:"ssh_connections"`
	Tunnel       string             `json:"callback_tunnel,omitempty"` // localhost:PORT, for a node behind a callback
	NodedVersion string             `json:"noded_version,omitempty"`
	Seconds      float64            `json:"seconds"`
	StepSeconds  map[string]float64 `json:"step_seconds,omitempty"`
	Installed    []install.Action   `json:"installed,omitempty"` // --install's programs put on the node
	// sentSsconf: the ssconf node-daemon-setup applied, for a node reached
	// through its tunnel.
	sentSsconf map[string]string
}

// Documents builds both documents for node (secrets included: they go to
// the node on stdin, or to --print-payload's pipe). port is the node
// daemon's port the master will use (0: the cluster's); node-daemon-setup
// records it on the node.
func Documents(c *cluster.Cluster, node, ip string, port int) (*joindoc.Prepare, *joindoc.DaemonSetup, error) {
	p, err := c.PrepareDoc()
	if err != nil {
		return nil, nil, err
	}
	d, err := c.DaemonSetupDoc(node, ip)
	if err != nil {
		return nil, nil, err
	}
	d.NodeDaemonPort = c.Settings.NodeDaemonPort
	if port != 0 {
		d.NodeDaemonPort = port
	}
	return p, d, nil
}

// ClusterHostKeys are the cluster's SSH host keys in prep, which every
// node presents once prepare-node-join has run on it.
func ClusterHostKeys(prep *joindoc.Prepare) []sshrun.HostKey {
	var out []sshrun.HostKey
	for _, k := range prep.SSHHostKey {
		if hk, err := parseKeyLine(k.Public); err == nil {
			out = append(out, hk)
		}
	}
	return out
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
	var a attempt
	err := join(ctx, o, node, res, &a)
	for n := 0; errors.Is(err, errStale) && n < maxStaleRejoins; n++ {
		if o.Log != nil {
			o.Log.Info("the cluster's keys changed during the join (cluster-renew); joining again with the current documents", "node", node)
		}
		connections := res.Connections
		err = join(ctx, o, node, res, &a)
		res.Connections += connections
	}
	if errors.Is(err, errStale) {
		err = fail(StepRecord, "the cluster's keys changed during each of %d joins (cluster-renew is rotating them); run node-add again", maxStaleRejoins+1)
	}
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

func join(ctx context.Context, o Options, node string, res *Result, a *attempt) error {
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

	prep, setup, err := Documents(o.Cluster, node, ip, o.NodeDaemonPort)
	if err != nil {
		return fail(StepDocument, "%v", err)
	}
	recorded, err := o.Cluster.Recorded(node)
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
	tunnel := tunnelSSH(o, node, &cfg)
	if tunnel != 0 {
		res.Tunnel = tunnelAddr(tunnel)
	}
	cfg.HostKeyFingerprints = append(append([]string(nil), o.Pins[""]...), o.Pins[node]...)
	cfg.KnownHostsFiles = append(cfg.KnownHostsFiles, o.Cluster.Path(nodeconf.KnownHosts))
	// A recorded node presents the cluster's host key: that is its
	// expected state. For any other name the cluster key proves nothing
	// (every node holds it), so sshrun refuses it unless pinned.
	cfg.ClusterKeys = ClusterHostKeys(prep)
	// During a host key rotation's window a recorded node may still
	// present the old keys (cluster-renew(8)).
	cfg.ClusterKeys = append(cfg.ClusterKeys, o.Cluster.WindowHostKeys(time.Now())...)
	cfg.TrustClusterKeys = recorded
	// During a rotation of the master's root key it offers the new and
	// the old (cluster-renew(8)).
	cfg.IdentityFiles = o.Cluster.RootIdentities()
	// A join made again (errStale): this run gave the node the cluster
	// keys of its first documents after checking the node's own key.
	if len(a.prepared) > 0 {
		cfg.ClusterKeys = append(cfg.ClusterKeys, a.prepared...)
		cfg.TrustClusterKeys = true
	}
	cfg.Log = log
	conn, err := dial(ctx, cfg, cfg.TrustClusterKeys, log)
	// A rotation of the master's root key may have started since the keys
	// to offer were read: offer its keys.
	if ids := o.Cluster.RootIdentities(); errors.Is(err, sshrun.ErrAuth) && !slices.Equal(ids, cfg.IdentityFiles) {
		cfg.IdentityFiles = ids
		conn, err = dial(ctx, cfg, cfg.TrustClusterKeys, log)
	}
	timed(StepConnect, t)
	if conn != nil {
		res.Connections = conn.Attempts()
	} else {
		res.Connections = 1
	}
	if err != nil {
		if f := tunnelFailure(err, node, tunnel); f != nil {
			return f
		}
		var hke *sshrun.HostKeyError
		if errors.As(err, &hke) {
			return &failure{step: StepHostKey, msg: err.Error() + "; no login was attempted", hints: hke.Hints()}
		}
		return connectFailure(err, ip, o)
	}
	defer func() { _ = conn.Close() }() // idempotent; closed below once both programs ran
	res.HostKey = conn.HostKey().Fingerprint()

	if o.Install != nil {
		progress(StepInstall)
		if err := installPrograms(ctx, &o, conn, res); err != nil {
			return err
		}
	}

	progress(StepPrepare)
	t = time.Now()
	pres, err := runProgram(ctx, conn, StepPrepare, append([]string{o.PrepareProgram}, o.RemoteArgs...), prepJSON)
	timed(StepPrepare, t)
	if err != nil {
		return staleOr(o.Cluster, prep, setup, err)
	}
	if pres.RootPublicKey == "" {
		return fail(StepPrepare, "the result names no root public key")
	}
	rk, err := parseKeyLine(pres.RootPublicKey)
	if err != nil {
		return fail(StepPrepare, "the result's root public key: %v", err)
	}
	res.RootKey = rk.Fingerprint()
	a.prepared = append(a.prepared, ClusterHostKeys(prep)...)
	// The node must now present the cluster host keys.
	for _, k := range prep.SSHHostKey {
		want, _ := parseKeyLine(k.Public)
		if got := pres.HostKeyFingerprints[k.Kind]; got != want.Fingerprint() {
			return fail(StepPrepare, "the node reports %s host key %q, not the cluster's %s", k.Kind, got, want.Fingerprint())
		}
	}
	// Report the key the node presents from now on, and the one it was
	// verified with if that was another (its own, before it joined).
	if now := nowHostKey(prep, conn.HostKey()); now != res.HostKey {
		res.HostKey, res.VerifiedHostKey = now, res.HostKey
	}
	res.Changed = pres.Changed

	progress(StepSetup)
	t = time.Now()
	sres, err := runProgram(ctx, conn, StepSetup, append([]string{o.SetupProgram}, o.RemoteArgs...), setupJSON)
	timed(StepSetup, t)
	if err != nil {
		return staleOr(o.Cluster, prep, setup, err)
	}
	res.Changed = res.Changed || sres.Changed
	if tunnel != 0 {
		res.sentSsconf = setup.Ssconf
	}

	progress(StepNoded)
	t = time.Now()
	wctx := ctx
	if o.NodeDaemonTimeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, o.NodeDaemonTimeout)
		defer cancel()
	}
	// The port the document gave the node (the cluster's unless
	// --node-daemon-port): where its daemon now listens.
	client, addr, err := nodedClient(wctx, o, conn, tunnel, node, ip, setup.NodeDaemonPort)
	if err != nil {
		return fail(StepNoded, "%v", err)
	}
	v, err := client.WaitVersion(wctx, ip, setup.NodeDaemonPort, 250*time.Millisecond)
	timed(StepNoded, t)
	if err != nil {
		within := "within --node-daemon-timeout " + o.NodeDaemonTimeout.String()
		if ctx.Err() != nil {
			within = "before --timeout " + o.Timeout.String() + " (the bound on the whole join) ran out"
		}
		f := fail(StepNoded, "the node daemon on %s did not answer %s: %v", addr, within, err)
		state := "the node is configured but not recorded on the master"
		if recorded {
			state = "the node was recorded on the master by an earlier run and stays so; its node daemon does not answer now"
		}
		f.hints = []string{
			state,
			fmt.Sprintf("the master expects the node daemon on port %d (node-daemon-setup records it as node_daemon_port in the node's /etc/nodejoin/node.json); see the node daemon's log on the node (/var/log/nodejoin/noded.log), then run node-add again", setup.NodeDaemonPort),
		}
		return f
	}
	if v.ClusterName != o.Cluster.Settings.ClusterName {
		return fail(StepNoded, "the node daemon answers for cluster %q, not %q", v.ClusterName, o.Cluster.Settings.ClusterName)
	}
	res.NodedVersion = v.Version

	progress(StepRecord)
	if st, err := stale(o.Cluster, prep, setup); err != nil {
		return fail(StepRecord, "%v", err)
	} else if st {
		return errStale
	}
	via := cluster.ViaPush
	if res.Tunnel != "" {
		via = cluster.ViaCallback
	}
	t = time.Now()
	res.Recorded, err = o.Cluster.RecordNode(cluster.Node{Name: node, PrimaryIP: ip, RootPublicKey: pres.RootPublicKey,
		Via: via, HostKey: cmp.Or(res.VerifiedHostKey, res.HostKey)})
	timed(StepRecord, t)
	if err != nil {
		return fail(StepRecord, "%v", err)
	}
	return nil
}

// nowHostKey is the cluster host key of the connection's key type, which
// the node presents once prepare-node-join has run; else the connection's.
func nowHostKey(prep *joindoc.Prepare, verified sshrun.HostKey) string {
	keys := ClusterHostKeys(prep)
	for _, k := range keys {
		if k.Type == verified.Type {
			return k.Fingerprint()
		}
	}
	if len(keys) > 0 {
		return keys[0].Fingerprint()
	}
	return verified.Fingerprint()
}

// connectFailure names what an operator can check for a failed connect:
// what ssh said decides which hint helps.
func connectFailure(err error, ip string, o Options) *failure {
	f := fail(StepConnect, "%v", err)
	msg := err.Error()
	switch {
	case errors.Is(err, sshrun.ErrAuth):
		f.hints = []string{"node-add logs in with the keys the master's ssh uses (ssh-agent, ~/.ssh/id_*); put the master's root key in the node's authorized_keys first"}
	case errors.Is(err, sshrun.ErrTimeout):
		f.hints = []string{fmt.Sprintf("the connection was not set up within --timeout %s (the bound on the whole join of a node); check the network path to %s, or raise --timeout", o.Timeout, ip)}
	case errors.Is(err, sshrun.ErrUnreachable) && strings.Contains(msg, "Connection refused"):
		f.hints = []string{fmt.Sprintf("%s answers but nothing listens on the SSH port: check that sshd runs on the node and that the port (--ssh-port) is right", ip)}
	case errors.Is(err, sshrun.ErrUnreachable) && (strings.Contains(msg, "Could not resolve") || strings.Contains(msg, "Name or service not known")):
		f.hints = []string{"ssh cannot resolve the name: check the master's resolver and ssh_config (a HostName for the node)"}
	case errors.Is(err, sshrun.ErrUnreachable) && strings.Contains(msg, "timed out"):
		f.hints = []string{fmt.Sprintf("no answer from %s within --connect-timeout %s: check that the node is up, its address, and that no firewall drops the SSH port; raise --connect-timeout on a slow network", ip, o.SSH.ConnectTimeout)}
	case errors.Is(err, sshrun.ErrUnreachable) && (strings.Contains(msg, "No route") || strings.Contains(msg, "unreachable")):
		f.hints = []string{fmt.Sprintf("the master has no route to %s: check the node's address and the master's network", ip)}
	case errors.Is(err, sshrun.ErrUnreachable):
		f.hints = []string{"the node closed the connection before the SSH handshake: check its sshd (MaxStartups, tcp wrappers, a firewall) and that the port (--ssh-port) is an SSH server's"}
	}
	return f
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
		errs, hints := remoteLines(r.Stderr)
		f := &failure{step: step, status: &status, hints: hints,
			msg: fmt.Sprintf("%s exited %d (%s)%s", argv[0], status, meaning(status), errs)}
		switch status {
		case problem.ExitRejected:
			f.msg += "; no changes were made on the node"
		case problem.ExitFailed:
			// The node-side programs say themselves what they put back.
			if !strings.Contains(errs, "put back") {
				f.msg += "; the node was put back as it was"
			}
		case 127:
			flag := map[string]string{StepPrepare: "--prepare-program", StepSetup: "--setup-program"}[step]
			f.hints = append(f.hints, fmt.Sprintf("%s is not on the login user's PATH on the node; pass node-add --install to put the programs there over this connection, install nodejoin there, or name its path with %s", argv[0], flag))
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
	case problem.ExitFailed:
		return "failed while applying"
	case problem.ExitUsage:
		return "usage"
	case problem.ExitRejected:
		return "input rejected"
	case 126, 127:
		return "not found or not executable"
	}
	return "unknown status"
}

// remoteLines splits the remote program's standard error by the cmd/internal/cli
// contract: its "error:" lines (else its last line) for the message, and
// its "hint:" lines, each once, as "prog: ..." to be relayed as node-add's
// own hints (not inside the message, which repeated them); each bounded.
func remoteLines(stderr []byte) (errs string, hints []string) {
	var keep []string
	all := strings.Split(strings.TrimSpace(string(stderr)), "\n")
	for _, l := range all {
		if _, _, ok := problem.CutLine(l, problem.LineError); ok {
			keep = append(keep, clip(l))
		} else if prog, h, ok := problem.CutLine(l, problem.LineHint); ok {
			if h = clip(strings.TrimSpace(prog) + ": " + h); !slices.Contains(hints, h) {
				hints = append(hints, h)
			}
		}
	}
	if len(keep) == 0 && len(hints) == 0 && len(all) > 0 && all[len(all)-1] != "" {
		keep = append(keep, clip(all[len(all)-1]))
	}
	if len(keep) == 0 {
		return "", hints
	}
	return ": " + strings.Join(keep, "; "), hints
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
