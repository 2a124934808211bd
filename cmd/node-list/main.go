// Node-list lists the cluster's nodes from the master's state and, with
// --check, asks each node's daemon how it is. See doc/node-list.8.md.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/master/nodelist"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
)

func main() { os.Exit(cli.Main("node-list", os.Args[1:], run)) }

const usage = `Usage: node-list [flags] [NODE...]

List the cluster's nodes (every one, or each NODE) as this master records
them: role, primary address, the host key they present, their root key's
fingerprint, and when and how they joined (push: node-add; pull:
join-service; callback: through the node's tunnel) where the master
recorded it. With --check, ask each node's daemon over TLS (the cluster
certificate, the master's client certificate) for its version and health,
in parallel, each within --timeout. Exit status: 0 listed (and with
--check every node's daemon healthy), 1 a node's daemon did not answer or
is degraded, 2 usage, 3 a NODE the cluster does not have.`

type flags struct {
	cli.Flags
	root     string
	output   string
	json     bool
	check    bool
	timeout  time.Duration
	parallel int
	port     int
}

func run(env *cli.Env, args []string) error {
	var f flags
	fs := cli.NewFlagSet("node-list", usage, &f.Flags)
	fs.StringVar(&f.root, "root", "/", "the master's state is under `DIR` (tests and QA)")
	fs.StringVar(&f.output, "output", "text", "`FORMAT` of the list: text (a table), or json (one object per node)")
	fs.BoolVar(&f.json, "json", false, "the same as --output json")
	fs.BoolVar(&f.check, "check", false, "ask each node's daemon for its version and health over TLS")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Second, "with --check, `DURATION` each node's daemon has to answer")
	fs.IntVar(&f.parallel, "parallel", 32, "with --check, ask at most `N` nodes at a time")
	fs.IntVar(&f.port, "node-daemon-port", 0, "`PORT` of the node daemons (default the cluster's, "+strconv.Itoa(nodeconf.DefaultNodeDaemonPort)+")")
	cli.Args(fs, cli.ArgsNodes)
	cli.Values(fs, "output", "text", "json")
	if err := cli.Parse(env, fs, &f.Flags, args); err != nil {
		return err
	}
	if f.json {
		f.output = "json"
	}
	if f.output != "text" && f.output != "json" {
		return problem.Usagef("--output must be text or json, not %q", f.output)
	}
	if f.parallel < 1 {
		return problem.Usagef("--parallel must be at least 1")
	}
	if f.timeout <= 0 {
		return problem.Usagef("--timeout must be positive")
	}
	c, err := cluster.Open(f.root)
	if err != nil {
		return problem.Hint(err, "run node-list on the cluster's master (cluster-init made its state)")
	}
	if f.port == 0 {
		f.port = c.Settings.NodeDaemonPort
	}
	if f.port < 1 || f.port > 65535 {
		return problem.Usagef("--node-daemon-port must be a port (1 to 65535), not %d", f.port)
	}
	nodes, err := nodelist.List(c, fs.Args())
	if err != nil {
		return problem.Reject("", "%v", err)
	}
	if f.check {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		nodelist.CheckAll(ctx, c, nodes, f.port, f.parallel, f.timeout)
	}
	if f.output == "json" {
		enc := json.NewEncoder(env.Stdout)
		for _, n := range nodes {
			if err := enc.Encode(n); err != nil {
				return err
			}
		}
	} else if err := table(env, nodes, f.check); err != nil {
		return err
	}
	var bad []string
	for _, n := range nodes {
		if n.Noded != nil && !n.Noded.OK {
			bad = append(bad, n.Name)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%d of %d nodes' daemons are not healthy: %s", len(bad), len(nodes), strings.Join(bad, " "))
	}
	return nil
}

func table(env *cli.Env, nodes []nodelist.Node, check bool) error {
	w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	head := "NODE\tROLE\tADDRESS\tJOINED\tVIA\tHOST KEY\tROOT KEY"
	if check {
		head += "\tNODED"
	}
	fmt.Fprintln(w, head)
	for _, n := range nodes {
		joined, via := "-", dash(n.Via)
		if n.JoinedAt != nil {
			joined = n.JoinedAt.UTC().Format(time.RFC3339)
		}
		line := strings.Join([]string{n.Name, n.Role, dash(n.PrimaryIP), joined, via, dash(n.HostKey), dash(n.RootKey)}, "\t")
		if check {
			line += "\t" + nodedText(n.Noded)
		}
		fmt.Fprintln(w, line)
	}
	return w.Flush()
}

// nodedText is the NODED column: "ok VERSION", or what is wrong.
func nodedText(c *nodelist.Check) string {
	switch {
	case c == nil:
		return "-" // the master: not checked
	case c.OK:
		return "ok " + c.Version
	case c.Status != "":
		var bad []string
		for k, v := range c.Checks {
			if v != "ok" {
				bad = append(bad, k+": "+v)
			}
		}
		return c.Status + " " + c.Version + " (" + strings.Join(bad, ", ") + ")"
	}
	return "error: " + c.Error
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
