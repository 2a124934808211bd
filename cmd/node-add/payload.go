package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/nodejoin/nodejoin/lib/cli"
	"github.com/nodejoin/nodejoin/lib/cluster"
	"github.com/nodejoin/nodejoin/lib/join"
)

// printPayload prints one document, secrets included, for a pipe to ssh.
func printPayload(env *cli.Env, c *cluster.Cluster, program string, nodes []string) error {
	if len(nodes) != 1 {
		return cli.Usagef("--print-payload takes exactly one NODE")
	}
	if program != join.StepPrepare && program != join.StepSetup {
		return cli.Usagef("--print-payload: PROGRAM must be prepare-node-join or node-daemon-setup, not %q", program)
	}
	if f, ok := env.Stdout.(*os.File); ok && isTerminal(f) {
		return cli.Hint(cli.Usagef("--print-payload writes secrets; it will not write them to a terminal"),
			fmt.Sprintf("pipe it: node-add --print-payload %s %s | ssh root@%s %s", program, nodes[0], nodes[0], program))
	}
	node := nodes[0]
	ip, err := join.Resolve(context.Background(), node)
	if err != nil {
		return fmt.Errorf("resolving %s: %w", node, err)
	}
	prep, setup, err := join.Documents(c, node, ip)
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

// dryRun prints what a join would send and run, secrets redacted, without
// connecting.
func dryRun(env *cli.Env, c *cluster.Cluster, nodes []string, f *flags, remoteArgs []string) error {
	for _, node := range nodes {
		ip, err := join.Resolve(context.Background(), node)
		if err != nil {
			return cli.Reject(node, "cannot resolve: %v", err)
		}
		prep, setup, err := join.Documents(c, node, ip)
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
		plan := map[string]any{
			"node": node, "primary_ip": ip, "host_key_trust": trust, "ssh_user": f.sshUser,
			"run": []string{
				strings.Join(append([]string{f.prepare}, remoteArgs...), " "),
				strings.Join(append([]string{f.setup}, remoteArgs...), " "),
			},
			"node_daemon": fmt.Sprintf("%s:%d", ip, f.nodedPort),
			"documents":   map[string]any{join.StepPrepare: prep, join.StepSetup: setup},
		}
		enc := json.NewEncoder(env.Stdout)
		if f.output == "text" {
			enc.SetIndent("", "  ")
		}
		if err := enc.Encode(plan); err != nil {
			return err
		}
	}
	return nil
}

// redacted names a secret by its size and hash prefix, never its content.
func redacted(s string) string {
	return fmt.Sprintf("(secret, %d bytes, sha256:%.16s)", len(s), sha256hex(s))
}
