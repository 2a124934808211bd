// Callback-setup makes this node keep a reverse SSH tunnel to the master,
// so that a master that cannot reach the node reaches its sshd through a
// port on itself. See doc/callback-setup.8.md.
package main

import (
	"context"
	"encoding/json"
	"os"
	"os/signal"
	"syscall"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/apply"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/node/callback"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
)

const prog = "callback-setup"

const usage = `Usage: callback-setup [flags] < document.json
       callback-setup --run [flags]

Sets up this node's machine callback from the JSON document on standard
input: the callback key (generated on the node unless given), the master's
host keys pinned in a known_hosts of its own, and the tunnel's supervisor, a
systemd unit running ssh -N -R localhost:PORT:localhost:22 to the master
(enabled and restarted). Prints a JSON result with the callback public key,
for callback-grant on the master.
--run supervises the same ssh in the foreground where systemd does not run:
it starts ssh again whenever it exits, with a jittered backoff, until SIGTERM.
Exit status: 0 done, 1 failed and rolled back, 2 usage, 3 input rejected.`

func main() { os.Exit(cli.Main(prog, os.Args[1:], run)) }

// result is the common result with the callback's own facts.
type result struct {
	joindoc.Result
	CallbackPublicKey string `json:"callback_public_key"`
	// Supervisor says what keeps the tunnel up: the systemd unit, or
	// "callback-setup --run" to be started by the node's init.
	Supervisor string `json:"supervisor,omitempty"`
}

func run(env *cli.Env, args []string) error {
	var f cli.Flags
	fs := cli.NewFlagSet(prog, usage, &f)
	root := fs.String("root", "/", "take every path under `DIR` (tests and QA)")
	runTunnel := fs.Bool("run", false, "supervise the tunnel in the foreground until SIGTERM; read no document")
	keyOnly := fs.Bool("key-only", false, "make (or keep) the callback key and print it; read no document (before callback-grant)")
	if err := cli.Parse(env, fs, &f, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return problem.Usagef("no arguments are expected; the document is read on standard input")
	}
	cfg, err := nodeconf.Load(*root)
	if err != nil {
		return err
	}
	if *runTunnel {
		return supervise(env, cfg, f.DryRun)
	}
	ctx := context.Background()
	var pub string
	planner := callback.KeyPlanner(cfg, &pub)
	if !*keyOnly {
		doc, err := callback.Decode(env.Stdin)
		if err != nil {
			return err
		}
		planner = callback.Planner(cfg, doc, &pub)
	}
	if err := apply.Recover(ctx, cfg, env.Log, f.DryRun); err != nil {
		return err
	}
	res, err := apply.Run(ctx, cfg, env.Log, planner, f.DryRun)
	if err != nil {
		return err
	}
	res.Program = prog
	out := result{Result: res, CallbackPublicKey: pub, Supervisor: callback.UnitName}
	switch {
	case *keyOnly:
		out.Supervisor = ""
	case !callback.Systemd(cfg):
		out.Supervisor = "callback-setup --run"
		cli.PrintWarning(env.Stderr, prog, "systemd does not run on this node: start \"callback-setup --run\" from its init to keep the tunnel up")
	}
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// supervise runs the recorded tunnel until SIGTERM or SIGINT.
func supervise(env *cli.Env, cfg *nodeconf.Config, dryRun bool) error {
	s, err := callback.ReadSettings(cfg)
	if err != nil {
		return err
	}
	argv := s.Args(cfg.Path)
	if dryRun {
		enc := json.NewEncoder(env.Stdout)
		return enc.Encode(struct {
			Command []string `json:"command"`
		}{argv})
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	env.Log.Info("supervising the tunnel", "master", s.MasterHost, "remote_port", s.RemotePort)
	return callback.Supervise(ctx, env.Log, argv, env.Stderr, callback.DefaultBackoff)
}
