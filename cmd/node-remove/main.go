// Node-remove takes a node out of the cluster: node-cleanup on the node
// over one SSH connection, then the master's records, join-service slots,
// callback grant and the other nodes' ssconf. See doc/node-remove.8.md.
package main

import (
	"context"
	"encoding/json"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/master/callback"
	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/master/remove"
	"github.com/nodejoin/nodejoin/internal/master/sshrun"
	"github.com/nodejoin/nodejoin/internal/problem"
)

const prog = "node-remove"

const usage = `Usage: node-remove [flags] NODE

Take NODE out of the cluster. First on the node, over one SSH connection
(its host key: the cluster's, which a recorded node presents, or
--host-key-fingerprint): node-cleanup puts back what the join wrote and
stops the node daemon. Then on the master: NODE leaves ganeti_pub_keys, the
ssconf node lists and the cluster known_hosts alias, its join-service slots
(while join-service runs) and its callback grant go, and ssconf is sent to
the remaining nodes. A node that does not answer is removed on the master
only, with a warning; one that answers but cannot be cleaned leaves the
master as it was, unless --force. Prints a JSON result. Exit status: 0 done,
1 failed (the master untouched unless --force), 2 usage, 3 input rejected.`

func main() { os.Exit(cli.Main(prog, os.Args[1:], run)) }

func run(env *cli.Env, args []string) error {
	var f cli.Flags
	fs := cli.NewFlagSet(prog, usage, &f)
	root := fs.String("root", "/", "the master's state is under `DIR` (tests and QA)")
	pins := fs.StringArray("host-key-fingerprint", nil, "also trust the node's host key with this `SHA256:...` fingerprint (repeatable)")
	force := fs.Bool("force", false, "remove the node on the master even if it answers but cannot be cleaned, or is not recorded")
	sshPort := fs.Int("ssh-port", 0, "SSH `PORT` of the node (default from ssh_config, else 22)")
	sshUser := fs.String("ssh-user", "root", "log in as `USER`")
	connectTimeout := fs.Duration("connect-timeout", 10*time.Second, "`DURATION` to connect and authenticate")
	timeout := fs.Duration("timeout", 2*time.Minute, "`DURATION` the node's side may take")
	cleanupProgram := fs.String("cleanup-program", "node-cleanup", "`PATH` or name of node-cleanup on the node")
	remoteRoot := fs.String("remote-root", "", "pass --root `DIR` to node-cleanup (tests and QA)")
	nodedPort := fs.Int("node-daemon-port", 0, "`PORT` of the node daemons the ssconf goes to (default from the cluster settings)")
	socket := fs.String("join-service-socket", "", "join-service's admin socket `PATH` (default <run dir>/join-service.sock)")
	if err := cli.Parse(env, fs, &f, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return problem.Usagef("one NODE is expected")
	}
	c, err := cluster.Open(*root)
	if err != nil {
		return problem.Hint(err, "node-remove runs on the cluster's master")
	}
	if *nodedPort == 0 {
		*nodedPort = c.Settings.NodeDaemonPort
	}
	if *socket == "" {
		*socket = c.Config.Path(filepath.Join(c.Config.RunDir, "join-service.sock"))
	}
	var remoteArgs []string
	if *remoteRoot != "" {
		remoteArgs = append(remoteArgs, "--root", *remoteRoot)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	o := remove.Options{
		Cluster:           c,
		SSH:               sshrun.Config{Port: *sshPort, User: *sshUser, ConnectTimeout: *connectTimeout},
		Pins:              *pins,
		CleanupProgram:    *cleanupProgram,
		RemoteArgs:        remoteArgs,
		Force:             *force,
		DryRun:            f.DryRun,
		NodeDaemonPort:    *nodedPort,
		Parallel:          10,
		Timeout:           *timeout,
		JoinServiceSocket: *socket,
		StoreDir:          c.Config.Path(filepath.Join(c.Config.StateDir, "join-service")),
		Callback:          callback.DefaultOptions(),
		Log:               env.Log,
	}
	res, err := remove.Remove(ctx, o, fs.Arg(0))
	if res != nil {
		for _, w := range res.Warnings {
			cli.PrintWarning(env.Stderr, prog, w)
		}
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if eerr := enc.Encode(res); eerr != nil && err == nil {
			err = eerr
		}
	}
	return err
}
