// Cluster-init creates the master's cluster state in Ganeti's layout, so
// that node-add has everything to send. See doc/cluster-init.8.md.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/master/clusterinit"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
	"github.com/nodejoin/nodejoin/internal/sshkeys"
)

func main() { os.Exit(cli.Main("cluster-init", os.Args[1:], run)) }

const usage = `Usage: cluster-init --cluster-name NAME [flags]

Create the cluster on this master: the cluster certificate (server.pem), the
master's client certificate (client.pem), hmac.key, the ssconf files, the
cluster SSH host keys (this host's, an ed25519 key is made if it has none),
root's key pair, ganeti_pub_keys, the cluster known_hosts and the toolkit's
settings (cluster.json). An existing cluster is refused unless --force, and --force is refused
while nodes are recorded (cluster-renew renews their keys in place).`

type flags struct {
	cli.Flags
	o      clusterinit.InitOptions
	days   int
	output string
}

func run(env *cli.Env, args []string) error {
	var f flags
	fs := cli.NewFlagSet("cluster-init", usage, &f.Flags)
	fs.StringVar(&f.o.Root, "root", "/", "take every path under `DIR` (tests and QA)")
	fs.StringVar(&f.o.ClusterName, "cluster-name", "", "the cluster's `NAME` (required)")
	fs.StringVar(&f.o.MasterNode, "master-node", "", "this master's node `NAME` (default this host's name)")
	fs.StringVar(&f.o.MasterIP, "master-ip", "", "the master's `ADDRESS` (default the master node name's address)")
	fs.StringVar(&f.o.MasterNetdev, "master-netdev", "", "the master's network `DEVICE`, for ssconf")
	fs.StringVar(&f.o.SSHKeyType, "ssh-key-type", "ed25519", "`TYPE` of root's key pair on the master and on nodes: rsa, ecdsa or ed25519")
	fs.IntVar(&f.o.SSHKeyBits, "ssh-key-bits", 0, "`BITS` of root's key pair (default the type's: rsa 2048, ecdsa and ed25519 256)")
	fs.IntVar(&f.o.NodeDaemonPort, "node-daemon-port", nodeconf.DefaultNodeDaemonPort, "`PORT` of the node daemon on every node")
	fs.IntVar(&f.days, "certificate-days", 1825, "validity of the cluster certificate in `DAYS`")
	fs.BoolVar(&f.o.Force, "force", false, "replace an existing cluster that has no node recorded but the master (the host keys and root's key are kept)")
	fs.StringVar(&f.output, "output", "text", "`FORMAT` of the report: text or json")
	cli.Values(fs, "output", "text", "json")
	if err := cli.Parse(env, fs, &f.Flags, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return problem.Usagef("no arguments are expected, got %q", fs.Arg(0))
	}
	if f.o.ClusterName == "" {
		return problem.Usagef("--cluster-name is required")
	}
	if f.output != "text" && f.output != "json" {
		return problem.Usagef("--output must be text or json, not %q", f.output)
	}
	if f.days < 1 {
		return problem.Usagef("--certificate-days must be at least 1")
	}
	f.o.CertValidity = time.Duration(f.days) * 24 * time.Hour
	plan, err := clusterinit.PlanInit(f.o)
	if err != nil {
		return err
	}
	if !f.DryRun {
		if err := plan.Apply(context.Background(), env.Log); err != nil {
			return err
		}
	}
	if f.output == "json" {
		enc := json.NewEncoder(env.Stdout)
		return enc.Encode(struct {
			Program string `json:"program"`
			DryRun  bool   `json:"dry_run"`
			*clusterinit.InitPlan
		}{"cluster-init", f.DryRun, plan})
	}
	verb := "created"
	if f.DryRun {
		verb = "would create"
	}
	fmt.Fprintf(env.Stdout, "cluster-init: %s cluster %s with master %s\n", verb, plan.Settings.ClusterName, plan.Settings.MasterNode)
	for _, fl := range plan.Files {
		digest := "sha256:" + fl.SHA256[:min(16, len(fl.SHA256))]
		if fl.Secret {
			digest = "(secret)"
		}
		fmt.Fprintf(env.Stdout, "  %-9s %s %s %s\n", fl.Action, fl.Mode, fl.Path, digest)
	}
	fmt.Fprintf(env.Stdout, "certificate %s\n", plan.CertFingerprint)
	for _, kind := range sshkeys.HostKinds {
		if fp, ok := plan.HostKeyFingerprints[string(kind)]; ok {
			fmt.Fprintf(env.Stdout, "cluster host key %s %s\n", kind, fp)
		}
	}
	fmt.Fprintf(env.Stdout, "root key %s %s\n", plan.Settings.SSHKeyType, plan.RootKeyFingerprint)
	return nil
}
