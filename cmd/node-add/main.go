// Node-add adds nodes to the cluster from the master over one SSH
// connection per node. See doc/node-add.8.md.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/master/join"
	"github.com/nodejoin/nodejoin/internal/master/sshrun"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
)

func main() { os.Exit(cli.Main("node-add", os.Args[1:], run)) }

const usage = `Usage: node-add [flags] NODE...
       node-add --print-payload PROGRAM NODE | ssh root@NODE PROGRAM
       node-add --print-ssh-command NODE

Add each NODE (a name or an address) to the cluster: over one SSH connection
per node, run prepare-node-join and node-daemon-setup with documents built
from this master's state (--node-daemon-port travels with them to the node),
wait until the node daemon answers over TLS with the cluster certificate,
record the node (ganeti_pub_keys, ssconf node lists, known_hosts), and send
ssconf to every node. The node's host key must match --host-key-fingerprint
or the master's known_hosts; an unknown key is refused (its fingerprint is
printed) unless --accept-new-host-key. A recorded node may present the
cluster's host key; any other name presenting it is refused unless that key
is pinned for it. Recovery by hand: node-add(8), RECOVERY. Exit status:
0 every node joined, 1 a node failed, 2 usage, 3 input rejected (nothing was done).`

type flags struct {
	cli.Flags
	root           string
	pins           []string
	acceptNew      bool
	sshPort        int
	sshUser        string
	connectTimeout time.Duration
	timeout        time.Duration
	nodedTimeout   time.Duration
	nodedPort      int
	parallel       int
	prepare        string
	setup          string
	remoteRoot     string
	printPayload   string
	printSSH       bool
	output         string
	viaCallback    bool
	install        installFlags
}

func run(env *cli.Env, args []string) error {
	var f flags
	fs := cli.NewFlagSet("node-add", usage, &f.Flags)
	fs.StringVar(&f.root, "root", "/", "the master's state is under `DIR` (tests and QA)")
	fs.StringArrayVar(&f.pins, "host-key-fingerprint", nil, "trust the node's host key with this `SHA256:...` fingerprint (as ssh-keygen -lf prints it; NODE=SHA256:... for one node; repeatable)")
	fs.BoolVar(&f.acceptNew, "accept-new-host-key", false, "trust the host key of a node that the master's known_hosts does not list (never a changed key)")
	fs.IntVar(&f.sshPort, "ssh-port", 0, "SSH `PORT` of the nodes (default from ssh_config, else 22)")
	fs.StringVar(&f.sshUser, "ssh-user", "root", "log in as `USER`")
	fs.DurationVar(&f.connectTimeout, "connect-timeout", 10*time.Second, "`DURATION` to connect and authenticate")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Minute, "`DURATION` a whole join of one node may take")
	fs.DurationVar(&f.nodedTimeout, "node-daemon-timeout", 30*time.Second, "`DURATION` to wait for the node daemon to answer")
	fs.IntVar(&f.nodedPort, "node-daemon-port", 0, "`PORT` of the node daemon (default from the cluster settings, "+strconv.Itoa(nodeconf.DefaultNodeDaemonPort)+")")
	fs.IntVar(&f.parallel, "parallel", 10, "join at most `N` nodes at a time")
	fs.StringVar(&f.prepare, "prepare-program", "prepare-node-join", "`PATH` or name of prepare-node-join on the nodes")
	fs.StringVar(&f.setup, "setup-program", "node-daemon-setup", "`PATH` or name of node-daemon-setup on the nodes")
	fs.StringVar(&f.remoteRoot, "remote-root", "", "pass --root `DIR` to the node-side programs (tests and QA)")
	fs.StringVar(&f.printPayload, "print-payload", "", "print `PROGRAM`'s document for the one NODE on standard output, for piping to it by hand, and exit")
	fs.BoolVar(&f.printSSH, "print-ssh-command", false, "print the ssh command line that reaches the one NODE once it has the cluster's host key (recovery by hand), and exit")
	fs.BoolVar(&f.viaCallback, "via-callback", false, "reach every NODE through its callback tunnel (callback-grant(8)); a node with a grant is reached so without it too")
	fs.StringVar(&f.output, "output", "text", "`FORMAT` of the report on standard output: text, or json (one object per line)")
	f.install.register(fs)
	if err := cli.Parse(env, fs, &f.Flags, args); err != nil {
		return err
	}
	nodes := fs.Args()
	if len(nodes) == 0 {
		return problem.Usagef("no NODE given")
	}
	if f.output != "text" && f.output != "json" {
		return problem.Usagef("--output must be text or json, not %q", f.output)
	}
	if f.parallel < 1 {
		return problem.Usagef("--parallel must be at least 1")
	}
	pins := map[string][]string{}
	for _, p := range f.pins {
		node, fp, ok := strings.Cut(p, "=")
		if !ok {
			node, fp = "", p
		}
		pins[node] = append(pins[node], fp)
	}
	seen := map[string]bool{}
	for _, n := range nodes {
		if seen[n] {
			return problem.Usagef("node %s is given twice", n)
		}
		seen[n] = true
		if err := cluster.CheckName(n); err != nil && net.ParseIP(n) == nil {
			return problem.Reject("", "%v", err) // before any connection or lookup
		}
	}
	c, err := cluster.Open(f.root)
	if err != nil {
		return problem.Hint(err, "run cluster-init on this master first")
	}
	if f.nodedPort == 0 {
		f.nodedPort = c.Settings.NodeDaemonPort
	}
	if !fs.Changed("install") {
		f.install.on = c.Config.NodeAddInstall
	}
	if f.nodedPort < 1 || f.nodedPort > 65535 {
		return problem.Usagef("--node-daemon-port must be a port (1 to 65535), not %d", f.nodedPort)
	}
	tunnels, err := callbackTunnels(c, nodes, f.viaCallback)
	if err != nil {
		return err
	}
	if f.printPayload != "" {
		return printPayload(env, c, f.printPayload, nodes, f.nodedPort)
	}
	if f.printSSH {
		return printSSHCommand(env, c, nodes, &f, tunnels)
	}
	var remoteArgs []string
	if f.remoteRoot != "" {
		remoteArgs = append(remoteArgs, "--root", f.remoteRoot)
	}
	if f.Debug {
		remoteArgs = append(remoteArgs, "--debug")
	} else if f.Verbose {
		remoteArgs = append(remoteArgs, "--verbose")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	inst, err := f.install.options(ctx)
	if err != nil {
		return err
	}
	if f.DryRun {
		return dryRun(env, c, nodes, &f, remoteArgs, tunnels, inst)
	}
	prog := newProgress(env.Stderr, len(nodes))
	o := join.Options{
		Cluster: c,
		SSH: sshrun.Config{Port: f.sshPort, User: f.sshUser, AcceptNew: f.acceptNew,
			ConnectTimeout: f.connectTimeout},
		Pins:              pins,
		PrepareProgram:    f.prepare,
		SetupProgram:      f.setup,
		RemoteArgs:        remoteArgs,
		NodeDaemonPort:    f.nodedPort,
		NodeDaemonTimeout: f.nodedTimeout,
		Timeout:           f.timeout,
		Log:               env.Log,
		Progress:          prog.step,
		Tunnels:           tunnels,
		Install:           inst,
	}
	results := make([]*join.Result, len(nodes))
	var mu sync.Mutex
	join.Each(len(nodes), f.parallel, func(i int) {
		r := join.Join(ctx, o, nodes[i])
		mu.Lock()
		defer mu.Unlock()
		results[i] = r
		prog.done(r)
		report(env, f.output, r)
	})
	prog.finish()
	pushSsconf(ctx, env, f, o, results)
	return summary(env, f.output, results)
}

// pushSsconf brings every node's ssconf up to date with the master's once
// nodes have joined; a node it cannot reach is warned about, and does not
// change the exit status (its join, if any, succeeded).
func pushSsconf(ctx context.Context, env *cli.Env, f flags, o join.Options, results []*join.Result) {
	joined := false
	for _, r := range results {
		joined = joined || r.OK
	}
	if !joined {
		return
	}
	o.TunnelSsconf = join.TunnelSsconf(results)
	pushed, err := join.PushSsconf(ctx, o, f.parallel)
	if err != nil {
		cli.PrintWarning(env.Stderr, "node-add", fmt.Sprintf("updating the nodes' ssconf: %v", err))
		return
	}
	var updated []string
	for _, p := range pushed {
		switch {
		case f.output == "json":
			_ = json.NewEncoder(env.Stdout).Encode(struct {
				Push join.PushResult `json:"ssconf_push"`
			}{p})
		case p.Error != "":
			cli.PrintWarning(env.Stderr, "node-add", p.Node+": "+p.Error)
		case p.Changed:
			updated = append(updated, p.Node)
		}
	}
	if f.output != "json" && len(updated) > 0 {
		fmt.Fprintf(env.Stdout, "node-add: ssconf updated on %s\n", strings.Join(updated, ", "))
	}
}

// report prints one node's outcome as soon as it is known.
func report(env *cli.Env, output string, r *join.Result) {
	if output == "json" {
		_ = json.NewEncoder(env.Stdout).Encode(r)
		return
	}
	if r.OK {
		state := "joined"
		switch {
		case !r.Changed && r.Recorded:
			state = "recorded on the master (the node already had the cluster's state)"
		case !r.Changed:
			state = "already joined, nothing changed"
		}
		hostKey := r.HostKey
		if r.VerifiedHostKey != "" {
			hostKey += ", verified as " + r.VerifiedHostKey
		}
		via := ""
		if r.Tunnel != "" {
			via = ", through its callback tunnel on " + r.Tunnel
		}
		fmt.Fprintf(env.Stdout, "%s: %s in %.1fs (host key %s, root key %s, noded %s%s%s)\n",
			r.Node, state, r.Seconds, hostKey, r.RootKey, r.NodedVersion, via, installedText(r))
		return
	}
	status := ""
	if r.ExitStatus != nil {
		status = fmt.Sprintf(" (exit %d)", *r.ExitStatus)
	}
	// A failure is an error line of its own, in the "prog: error:" form.
	cli.PrintErrorLine(env.Stderr, "node-add", fmt.Sprintf("%s: failed at %s%s: %s", r.Node, r.Step, status, r.Message))
	for _, h := range r.Hints {
		cli.PrintHint(env.Stderr, "node-add", r.Node+": "+h)
	}
}

type failedError struct {
	failed, total int
	names         []string
}

func (e failedError) Error() string {
	return fmt.Sprintf("%d of %d nodes failed: %s", e.failed, e.total, strings.Join(e.names, " "))
}

// summary ends the report: one line on standard output when every node
// joined, else only the error line (cli prints it), so that a failed run
// has one summary; with --output json, the summary object as well.
// summaryLine is the last line of --output json. Fields are in the order
// of their keys, as the map it replaced printed them.
type summaryLine struct {
	Failed      int      `json:"failed"`
	FailedNodes []string `json:"failed_nodes"`
	Joined      int      `json:"joined"`
	Nodes       int      `json:"nodes"`
	Summary     bool     `json:"summary"` // true: tells this line from the nodes' results
}

func summary(env *cli.Env, output string, results []*join.Result) error {
	failed := 0
	var names []string
	for _, r := range results {
		if !r.OK {
			failed++
			names = append(names, r.Node)
		}
	}
	if output == "json" {
		_ = json.NewEncoder(env.Stdout).Encode(summaryLine{Failed: failed, FailedNodes: names,
			Joined: len(results) - failed, Nodes: len(results), Summary: true})
	} else if failed == 0 {
		fmt.Fprintf(env.Stdout, "node-add: %d of %d nodes joined\n", len(results), len(results))
	}
	if failed > 0 {
		return failedError{failed, len(results), names}
	}
	return nil
}
