// Cluster-renew rotates the cluster's SSH host keys, hmac key and
// certificate and the master's root key, with a window in which a recorded node may present the old
// keys or the new, so that joins running meanwhile never fail. See
// doc/cluster-renew.8.md.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/master/join"
	"github.com/nodejoin/nodejoin/internal/master/renew"
	"github.com/nodejoin/nodejoin/internal/master/sshrun"
	"github.com/nodejoin/nodejoin/internal/problem"
)

func main() { os.Exit(cli.Main("cluster-renew", os.Args[1:], run)) }

const usage = `Usage: cluster-renew [--new-host-keys] [--new-hmac-key] [--new-cluster-certificate] [--new-root-keys] [--window DURATION] [flags]
       cluster-renew [--finish] [flags]

Rotate the cluster's SSH host keys, its hmac key, its certificate
(server.pem) and/or the master's root key: make new ones, give them to this master, and join every
recorded node again with them (one SSH connection per node, as node-add).
Until the window ends a recorded node may present the old keys or the new,
and the old certificate or the new (node-add, cluster-renew, node-list
--check, node daemons, join-service's pins); after it only the new. Each step is
recorded first, so running cluster-renew again finishes an interrupted
rotation. --finish closes the window now, once every node is on the new keys.
Prints a JSON report. Exit status: 0 done, 1 a node is not on the new keys
yet (run again), 2 usage, 3 input rejected.`

func run(env *cli.Env, args []string) error {
	var f cli.Flags
	fs := cli.NewFlagSet("cluster-renew", usage, &f)
	root := fs.String("root", "/", "the master's state is under `DIR` (tests and QA)")
	hostKeys := fs.Bool("new-host-keys", false, "start a rotation of the cluster's SSH host keys")
	hmacKey := fs.Bool("new-hmac-key", false, "start a rotation of the cluster's hmac key")
	certificate := fs.Bool("new-cluster-certificate", false, "start a rotation of the cluster certificate (server.pem) and the master's client certificate")
	rootKeys := fs.Bool("new-root-keys", false, "start a rotation of the master's root key pair, the one nodes authorize")
	window := fs.Duration("window", time.Hour, "`DURATION` from the start in which the old host keys and certificate are still accepted")
	finish := fs.Bool("finish", false, "close the window at the end of this run (once every node is on the new keys)")
	sshPort := fs.Int("ssh-port", 0, "SSH `PORT` of the nodes (default from ssh_config, else 22)")
	sshUser := fs.String("ssh-user", "root", "log in as `USER`")
	connectTimeout := fs.Duration("connect-timeout", 10*time.Second, "`DURATION` to connect and authenticate")
	timeout := fs.Duration("timeout", 5*time.Minute, "`DURATION` the renewal of one node may take")
	nodedTimeout := fs.Duration("node-daemon-timeout", 30*time.Second, "`DURATION` to wait for a node daemon to answer")
	parallel := fs.Int("parallel", 10, "renew at most `N` nodes at a time")
	prepare := fs.String("prepare-program", "prepare-node-join", "`PATH` or name of prepare-node-join on the nodes")
	setup := fs.String("setup-program", "node-daemon-setup", "`PATH` or name of node-daemon-setup on the nodes")
	sshUpdate := fs.String("ssh-update-program", "ssh-update", "`PATH` or name of ssh-update on the nodes (--new-root-keys)")
	remoteRoot := fs.String("remote-root", "", "pass --root `DIR` to the node-side programs (tests and QA)")
	if err := cli.Parse(env, fs, &f, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return problem.Usagef("no arguments are expected")
	}
	if *window <= 0 {
		return problem.Usagef("--window must be positive, not %s", *window)
	}
	if *parallel < 1 {
		return problem.Usagef("--parallel must be at least 1")
	}
	if f.DryRun {
		return problem.Usagef("--dry-run is not supported: a rotation's steps depend on each other's results")
	}
	c, err := cluster.Open(*root)
	if err != nil {
		return problem.Hint(err, "run cluster-init on this master first")
	}
	var remoteArgs []string
	if *remoteRoot != "" {
		remoteArgs = append(remoteArgs, "--root", *remoteRoot)
	}
	if f.Debug {
		remoteArgs = append(remoteArgs, "--debug")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	o := renew.Options{
		Join: join.Options{
			Cluster:           c,
			SSH:               sshrun.Config{Port: *sshPort, User: *sshUser, ConnectTimeout: *connectTimeout},
			PrepareProgram:    *prepare,
			SetupProgram:      *setup,
			RemoteArgs:        remoteArgs,
			NodeDaemonPort:    c.Settings.NodeDaemonPort,
			NodeDaemonTimeout: *nodedTimeout,
			Timeout:           *timeout,
			Log:               env.Log,
		},
		NewHostKeys:           *hostKeys,
		NewHMACKey:            *hmacKey,
		NewClusterCertificate: *certificate,
		NewRootKeys:           *rootKeys,
		SSHUpdateProgram:      *sshUpdate,
		Window:                *window,
		Finish:                *finish,
		Parallel:              *parallel,
		Log:                   env.Log,
		Progress: func(r *join.Result) {
			if r.OK {
				fmt.Fprintf(env.Stderr, "cluster-renew: %s: on the new keys (%.1fs)\n", r.Node, r.Seconds)
				return
			}
			cli.PrintWarning(env.Stderr, "cluster-renew", fmt.Sprintf("%s: %s: %s", r.Node, r.Step, r.Message))
			for _, h := range r.Hints {
				cli.PrintHint(env.Stderr, "cluster-renew", r.Node+": "+h)
			}
		},
	}
	rep, err := renew.Run(ctx, o)
	if rep != nil {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if perr := enc.Encode(rep); perr != nil && err == nil {
			err = perr
		}
	}
	return err
}
