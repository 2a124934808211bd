// Noded is the reference node daemon: it serves /version and /health over
// mutual TLS with the node's server.pem, so that a cluster built with
// nodejoin alone can be checked end to end. See doc/noded.8.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/node/nodedserver"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
)

func main() { os.Exit(cli.Main("noded", os.Args[1:], run)) }

const usage = `Usage: noded [flags]

Serve GET /version and GET /health, and PUT /ssconf from the master, over
mutual TLS on the node daemon port. The server presents the data
directory's server.pem; clients must present a certificate signed by it.
PUT /ssconf writes ssconf files, and only from a client certificate whose
digest ssconf_master_candidates_certs lists (the master's client.pem).
Logs go to standard error, one line per request. SIGTERM or SIGINT stops it
cleanly. One noded runs per root: a second one refuses to start.

With --restart, stop the noded of this root (from its pid file) and start a
new one in the background, logging to the log directory's noded.log; exit
when it listens (the new daemon says so on --ready-fd). This is the node
daemon restart command of node.json.`

type flags struct {
	cli.Flags
	root    string
	port    int
	bind    string
	restart bool
	stop    bool
	readyFD int
}

func run(env *cli.Env, args []string) error {
	var f flags
	fs := cli.NewFlagSet("noded", usage, &f.Flags)
	fs.StringVar(&f.root, "root", "/", "take every path under `DIR` (tests and QA)")
	fs.IntVar(&f.port, "port", nodeconf.DefaultNodeDaemonPort, "listen on `PORT` (node.json node_daemon_port overrides the default)")
	fs.StringVar(&f.bind, "bind", "", "listen on `ADDRESS` only (default all addresses)")
	fs.BoolVar(&f.restart, "restart", false, "stop the running noded of this root, start a new one in the background, wait until it listens")
	fs.BoolVar(&f.stop, "stop", false, "stop the running noded of this root and exit")
	fs.IntVar(&f.readyFD, "ready-fd", 0, "once listening, write one byte to descriptor `FD` and close it (how --restart learns that the new daemon listens)")
	if err := cli.Parse(env, fs, &f.Flags, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return problem.Usagef("no arguments are expected, got %q", fs.Arg(0))
	}
	if f.restart && f.stop {
		return problem.Usagef("--restart and --stop exclude each other")
	}
	if fs.Changed("ready-fd") {
		if f.restart || f.stop {
			return problem.Usagef("--ready-fd is for the daemon itself, not with --restart or --stop")
		}
		var st syscall.Stat_t
		if f.readyFD < 3 || syscall.Fstat(f.readyFD, &st) != nil {
			return problem.Usagef("--ready-fd: %d is not an open descriptor above standard error", f.readyFD)
		}
	}
	if fs.Changed("port") && (f.port < 1 || f.port > 65535) {
		return problem.Usagef("--port: %d is not a port (1 to 65535)", f.port)
	}
	if f.bind != "" && net.ParseIP(f.bind) == nil {
		return problem.Usagef("--bind: %q is not an IP address", f.bind)
	}
	cfg, err := nodeconf.Load(f.root)
	if err != nil {
		return err
	}
	if !fs.Changed("port") {
		f.port = cfg.NodeDaemonPort
	}
	switch {
	case f.stop:
		if f.DryRun {
			return nil
		}
		was, err := nodedserver.Stop(cfg, 10*time.Second)
		if err != nil {
			return err
		}
		if !was {
			env.Log.Info("no noded was running", "pid_file", nodedserver.PidFile(cfg))
		}
		return nil
	case f.restart:
		return restart(env, cfg, &f)
	}
	srv, err := nodedserver.LoadServer(cfg, env.Log)
	if err != nil {
		return problem.Hint(err, "node-daemon-setup installs server.pem; run node-add for this node on the master")
	}
	if f.DryRun {
		fmt.Fprintf(env.Stdout, "would serve on %s with %s\n", net.JoinHostPort(f.bind, strconv.Itoa(f.port)), cfg.Path(cfg.DataDir+"/server.pem"))
		return nil
	}
	// The pid file first: a second noded of this root must not get as far
	// as the port, nor touch the first one's pid file.
	release, err := nodedserver.TakePidFile(cfg)
	if errors.Is(err, nodedserver.ErrRunning) {
		return problem.Hint(err, "noded --stop --root "+cfg.Root+" stops it; noded --restart replaces it")
	}
	if err != nil {
		return err
	}
	defer release()
	ln, err := net.Listen("tcp", net.JoinHostPort(f.bind, strconv.Itoa(f.port)))
	if errors.Is(err, syscall.EADDRINUSE) {
		return problem.Hint(fmt.Errorf("listening: %w", err),
			fmt.Sprintf("another program listens on port %d: a noded of another --root, or Ganeti's ganeti-noded", f.port),
			"stop it (noded --stop --root DIR), or give this noded another port: node_daemon_port in "+
				cfg.Path(nodeconf.File)+", or --port")
	}
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if f.readyFD != 0 {
		// A starter that gave up waiting is no reason to stop serving.
		if err := nodedserver.NotifyReady(f.readyFD); err != nil {
			env.Log.Warn("could not say on --ready-fd that noded listens", "err", err)
		}
	}
	return srv.Serve(ctx, ln)
}

func restart(env *cli.Env, cfg *nodeconf.Config, f *flags) error {
	// Check before stopping the old daemon that the new one can start.
	if _, err := nodedserver.LoadServer(cfg, env.Log); err != nil {
		return err
	}
	if f.DryRun {
		fmt.Fprintf(env.Stdout, "would restart noded on port %d\n", f.port)
		return nil
	}
	if was, err := nodedserver.Stop(cfg, 10*time.Second); err != nil {
		return err
	} else if was {
		env.Log.Info("stopped the running noded")
	}
	exe, err := nodedserver.Self()
	if err != nil {
		return fmt.Errorf("finding this program: %w", err)
	}
	args := []string{"--root", cfg.Root, "--port", strconv.Itoa(f.port)}
	if f.bind != "" {
		args = append(args, "--bind", f.bind)
	}
	if f.Debug {
		args = append(args, "--debug")
	} else {
		args = append(args, "--verbose")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pid, err := nodedserver.StartDetached(ctx, cfg, exe, args, f.port)
	if err != nil {
		return err
	}
	env.Log.Info("noded started", "pid", pid, "port", f.port, "log", nodedserver.LogFile(cfg))
	return nil
}
