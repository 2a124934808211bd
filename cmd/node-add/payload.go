package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/master/join"
	"github.com/nodejoin/nodejoin/internal/master/sshrun"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
)

// printPayload prints one document, secrets included, for a pipe to ssh.
func printPayload(env *cli.Env, c *cluster.Cluster, program string, nodes []string, port int) error {
	if len(nodes) != 1 {
		return problem.Usagef("--print-payload takes exactly one NODE")
	}
	if program != join.StepPrepare && program != join.StepSetup {
		return problem.Usagef("--print-payload: PROGRAM must be prepare-node-join or node-daemon-setup, not %q", program)
	}
	if f, ok := env.Stdout.(*os.File); ok && isTerminal(f) {
		return problem.Hint(problem.Usagef("--print-payload writes secrets; it will not write them to a terminal"),
			fmt.Sprintf("pipe it to ssh: node-add --print-payload %s %s | ssh root@%s %s", program, nodes[0], nodes[0], program),
			"once the node presents the cluster's host key, use the ssh command line that node-add --print-ssh-command "+nodes[0]+" prints (node-add(8), RECOVERY)")
	}
	node := nodes[0]
	ip, err := join.Resolve(context.Background(), node)
	if err != nil {
		return fmt.Errorf("resolving %s: %w", node, err)
	}
	prep, setup, err := join.Documents(c, node, ip, port)
	if err != nil {
		return err
	}
	var doc any = prep
	if program == join.StepSetup {
		doc = setup
	}
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// sshCommand is the ssh command line that reaches node as the cluster
// knows it once prepare-node-join has run there: the node presents the
// cluster's host key, which the cluster known_hosts lists under the
// cluster name, so that name is the HostKeyAlias. Options only, no secret;
// run has checked the name. A node behind a callback is reached through
// its tunnel, its name still the one ssh_config matches.
func sshCommand(c *cluster.Cluster, node string, f *flags, tunnel int) []string {
	argv := []string{"ssh",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + c.Path(nodeconf.KnownHosts),
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "HostKeyAlias=" + c.Settings.ClusterName,
		"-o", "CheckHostIP=no",
		"-o", "UpdateHostKeys=no",
	}
	switch {
	case tunnel != 0:
		argv = append(argv, "-o", "HostName="+join.TunnelHost, "-o", "ProxyCommand=none", "-p", fmt.Sprint(tunnel))
	case f.sshPort != 0:
		argv = append(argv, "-p", fmt.Sprint(f.sshPort))
	}
	return append(argv, "-l", f.sshUser, node)
}

func printSSHCommand(env *cli.Env, c *cluster.Cluster, nodes []string, f *flags, tunnels map[string]int) error {
	if len(nodes) != 1 {
		return problem.Usagef("--print-ssh-command takes exactly one NODE")
	}
	_, err := fmt.Fprintln(env.Stdout, sshrun.ShellQuote(sshCommand(c, nodes[0], f, tunnels[nodes[0]])))
	return err
}

// dryRunPlan is one node's line of --dry-run --output json. Fields are in
// the order of their keys, as the map it replaced printed them.
type dryRunPlan struct {
	Documents    dryRunDocuments `json:"documents"`
	HostKeyTrust string          `json:"host_key_trust"`
	Node         string          `json:"node"`
	NodeDaemon   string          `json:"node_daemon"` // host:port
	PrimaryIP    string          `json:"primary_ip"`
	Install      *installPlan    `json:"install,omitempty"`
	Run          []string        `json:"run"`
	SSHUser      string          `json:"ssh_user"`
	Tunnel       string          `json:"callback_tunnel,omitempty"` // localhost:PORT
}

// dryRunDocuments are both documents, redacted.
type dryRunDocuments struct {
	Setup   joindoc.DaemonSetup `json:"node-daemon-setup"`
	Prepare joindoc.Prepare     `json:"prepare-node-join"`
}

// dryRun prints what a join would send and run, secrets redacted, without
// connecting: as JSON with --output json, else as lines for a reader.
func dryRun(env *cli.Env, c *cluster.Cluster, nodes []string, f *flags, remoteArgs []string, tunnels map[string]int, inst *join.Install) error {
	for _, node := range nodes {
		ip, err := join.Resolve(context.Background(), node)
		if err != nil {
			return problem.Reject(node, "cannot resolve: %v", err)
		}
		prep, setup, err := join.Documents(c, node, ip, f.nodedPort)
		if err != nil {
			return err
		}
		trust := "the master's known_hosts (" + c.Path(nodeconf.KnownHosts) + " and ssh_config's files)"
		if len(f.pins) > 0 {
			trust = "--host-key-fingerprint " + strings.Join(f.pins, " ")
		} else if f.acceptNew {
			trust += ", else accept a new key"
		}
		recorded, err := c.Recorded(node)
		if err != nil {
			return err
		}
		if recorded {
			trust += ", or the cluster's host key (the node is recorded)"
		}
		plan := dryRunPlan{
			Node: node, PrimaryIP: ip, HostKeyTrust: trust, SSHUser: f.sshUser,
			Run: []string{
				strings.Join(append([]string{f.prepare}, remoteArgs...), " "),
				strings.Join(append([]string{f.setup}, remoteArgs...), " "),
			},
			NodeDaemon: fmt.Sprintf("%s:%d", ip, f.nodedPort),
			Documents:  dryRunDocuments{Prepare: prep.Redacted(), Setup: setup.Redacted()},
			Install:    dryRunInstall(inst),
		}
		via := ""
		if port := tunnels[node]; port != 0 {
			plan.Tunnel = fmt.Sprintf("%s:%d", join.TunnelHost, port)
			plan.NodeDaemon = fmt.Sprintf("127.0.0.1:%d", f.nodedPort)
			via = " through its callback tunnel on " + plan.Tunnel + ", the host key checked as " + node
		}
		if f.output == "json" {
			if err := json.NewEncoder(env.Stdout).Encode(plan); err != nil {
				return err
			}
			continue
		}
		var keys []string
		for _, k := range join.ClusterHostKeys(prep) {
			keys = append(keys, k.Fingerprint())
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s (%s): would join, changing nothing now\n", node, ip)
		fmt.Fprintf(&b, "  host key: trusted by %s\n", trust)
		fmt.Fprintf(&b, "  ssh: one connection as %s%s, then runs:\n", f.sshUser, via)
		if plan.Install != nil {
			fmt.Fprintf(&b, "    (--install) the node's programs checked against %s's, version %s; the missing or older ones sent, checked by sha256, installed (missing ones into %s)\n",
				plan.Install.From, strings.Join(plan.Install.Versions, ", "), plan.Install.Dir)
		}
		for _, r := range plan.Run {
			fmt.Fprintf(&b, "    %s\n", r)
		}
		fmt.Fprintf(&b, "  after the join the node presents the cluster host keys %s\n", strings.Join(keys, ", "))
		if plan.Tunnel != "" {
			fmt.Fprintf(&b, "  node daemon: waits for %s of the node over TLS through that SSH connection, then records the node\n", plan.NodeDaemon)
		} else {
			fmt.Fprintf(&b, "  node daemon: waits for %s over TLS, then records the node\n", plan.NodeDaemon)
		}
		fmt.Fprintf(&b, "  documents: --dry-run --output json shows both, secrets redacted\n")
		if _, err := io.WriteString(env.Stdout, b.String()); err != nil {
			return err
		}
	}
	return nil
}
