package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nodejoin/nodejoin/lib/cli"
	"github.com/nodejoin/nodejoin/lib/cluster"
	"github.com/nodejoin/nodejoin/lib/join"
	"github.com/nodejoin/nodejoin/lib/sshrun"
)

// printPayload prints one document, secrets included, for a pipe to ssh.
func printPayload(env *cli.Env, c *cluster.Cluster, program string, nodes []string, port int) error {
	if len(nodes) != 1 {
		return cli.Usagef("--print-payload takes exactly one NODE")
	}
	if program != join.StepPrepare && program != join.StepSetup {
		return cli.Usagef("--print-payload: PROGRAM must be prepare-node-join or node-daemon-setup, not %q", program)
	}
	if f, ok := env.Stdout.(*os.File); ok && isTerminal(f) {
		return cli.Hint(cli.Usagef("--print-payload writes secrets; it will not write them to a terminal"),
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
// run has checked the name.
func sshCommand(c *cluster.Cluster, node string, f *flags) []string {
	argv := []string{"ssh",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + c.Path(cluster.KnownHosts),
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "HostKeyAlias=" + c.Settings.ClusterName,
		"-o", "CheckHostIP=no",
		"-o", "UpdateHostKeys=no",
	}
	if f.sshPort != 0 {
		argv = append(argv, "-p", fmt.Sprint(f.sshPort))
	}
	return append(argv, "-l", f.sshUser, node)
}

func printSSHCommand(env *cli.Env, c *cluster.Cluster, nodes []string, f *flags) error {
	if len(nodes) != 1 {
		return cli.Usagef("--print-ssh-command takes exactly one NODE")
	}
	_, err := fmt.Fprintln(env.Stdout, sshrun.ShellQuote(sshCommand(c, nodes[0], f)))
	return err
}

// dryRun prints what a join would send and run, secrets redacted, without
// connecting: as JSON with --output json, else as lines for a reader.
func dryRun(env *cli.Env, c *cluster.Cluster, nodes []string, f *flags, remoteArgs []string) error {
	for _, node := range nodes {
		ip, err := join.Resolve(context.Background(), node)
		if err != nil {
			return cli.Reject(node, "cannot resolve: %v", err)
		}
		prep, setup, err := join.Documents(c, node, ip, f.nodedPort)
		if err != nil {
			return err
		}
		for i := range prep.SSHHostKey {
			prep.SSHHostKey[i].Private = redacted(prep.SSHHostKey[i].Private)
		}
		setup.NodeDaemonCertificate = redacted(setup.NodeDaemonCertificate)
		setup.HMACKey = redacted(setup.HMACKey)
		trust := "the master's known_hosts (" + c.Path(cluster.KnownHosts) + " and ssh_config's files)"
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
		plan := map[string]any{
			"node": node, "primary_ip": ip, "host_key_trust": trust, "ssh_user": f.sshUser,
			"run": []string{
				strings.Join(append([]string{f.prepare}, remoteArgs...), " "),
				strings.Join(append([]string{f.setup}, remoteArgs...), " "),
			},
			"node_daemon": fmt.Sprintf("%s:%d", ip, f.nodedPort),
			"documents":   map[string]any{join.StepPrepare: prep, join.StepSetup: setup},
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
		fmt.Fprintf(&b, "  ssh: one connection as %s, then runs:\n", f.sshUser)
		for _, r := range plan["run"].([]string) {
			fmt.Fprintf(&b, "    %s\n", r)
		}
		fmt.Fprintf(&b, "  after the join the node presents the cluster host keys %s\n", strings.Join(keys, ", "))
		fmt.Fprintf(&b, "  node daemon: waits for %s over TLS, then records the node\n", plan["node_daemon"])
		fmt.Fprintf(&b, "  documents: --dry-run --output json shows both, secrets redacted\n")
		if _, err := io.WriteString(env.Stdout, b.String()); err != nil {
			return err
		}
	}
	return nil
}

// redacted names a secret by its size and hash prefix, never its content.
func redacted(s string) string {
	return fmt.Sprintf("(secret, %d bytes, sha256:%.16s)", len(s), sha256hex(s))
}
