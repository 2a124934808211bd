package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/node/joinclient"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
)

const usage = `Usage: node-join [flags] --server HOST[:PORT] --uuid UUID --secret-file FILE --ca-pin sha256:HEX
       node-join [flags] --boot-param [--cmdline FILE]
       node-join [flags] --token-file FILE
       ... [[--follow] --exec PROGRAM [-- ARG...]]
       node-join [flags] --discover (--ca-pin sha256:HEX | --accept-advertised-pin) [--cluster NAME] [--parent NAME]
       node-join [flags] --register [--wait] --server HOST[:PORT] --ca-pin sha256:HEX --cluster NAME [--parent NAME]

Fetches this node's join documents from the master's join-service with a
one-time secret, trusting the master by the SHA-256 pin of its certificate's
public key only, applies them as prepare-node-join and node-daemon-setup do
(same checks, same transaction, same rollback), and reports the result.
Prints a JSON result on standard output. Exit status: 0 joined, 1 failed
(the node's files put back, or the master not reached in time), 2 usage,
3 refused (a bad token, a refused secret, a wrong pin, a refused document;
nothing changed).
--discover and --register need no token: the machine asks the master's
registrar to register it (after its parent), waits until it is accepted,
and fetches its documents with its own request secret.`

// opts are node-join's flags.
type opts struct {
	root, server, uuid, secretFile, tokenFile, cmdline, nodeName, exec string
	callback                                                           string
	pins                                                               []string
	bootParam, follow                                                  bool
	timeout                                                            time.Duration
}

func run(env *cli.Env, args []string) error {
	if err := cli.RefuseSecretFlag(args, givePrivately); err != nil {
		return err
	}
	var f cli.Flags
	var o opts
	fs := cli.NewFlagSet(prog, usage, &f)
	fs.StringVar(&o.root, "root", "/", "apply changes under `DIR` (tests and recovery)")
	fs.StringVar(&o.server, "server", "", "the master's join-service at `HOST[:PORT]` (port 1816 by default; IPv6 in brackets)")
	fs.StringVar(&o.uuid, "uuid", "", "the slot's `UUID` (or \"dynamic\" for a dynamic pool)")
	fs.StringVar(&o.secretFile, "secret-file", "", "read the slot's secret from `FILE` (root's, mode 0600 or tighter; - for standard input)")
	fs.StringArrayVar(&o.pins, "ca-pin", nil, "trust the master whose certificate's public key has this `sha256:HEX` pin (repeatable)")
	fs.BoolVar(&o.bootParam, "boot-param", false, "take the token from the kernel command line's "+joinapi.BootParamKey+"= parameter")
	fs.StringVar(&o.cmdline, "cmdline", "/proc/cmdline", "read the kernel command line from `FILE` (tests)")
	fs.StringVar(&o.tokenFile, "token-file", "", "read the token from `FILE` (root's, mode 0600 or tighter)")
	fs.StringVar(&o.nodeName, "node-name", "", "this node's `NAME` for a slot that has none (default: the host name)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "retry the fetch and the report for at most `D`")
	fs.BoolVar(&o.follow, "follow", false, "after joining, wait for config changes and run --exec with each")
	fs.StringVar(&o.exec, "exec", "", "after joining, run `PROGRAM` (arguments after --, no shell) with the config on standard input: once, or with --follow at each change")
	var reg registerOpts
	reg.add(fs)
	fs.StringVar(&o.callback, "callback", callbackNever, "keep a reverse SSH tunnel to the master: `MODE` never, auto (when the master cannot reach this node) or always")
	if err := cli.Parse(env, fs, &f, args); err != nil {
		return err
	}
	if err := checkCallbackMode(o.callback); err != nil {
		return err
	}
	var execArgs []string
	if fs.NArg() > 0 {
		if o.exec == "" || fs.ArgsLenAtDash() != 0 {
			return problem.Usagef("unexpected arguments; the command's arguments follow --exec PROGRAM and --")
		}
		execArgs = fs.Args()
	}
	if o.follow && o.exec == "" {
		return problem.Usagef("--follow needs --exec PROGRAM")
	}
	if o.timeout <= 0 {
		return problem.Usagef("--timeout: must be positive")
	}
	if o.nodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("reading the host name: %w (give --node-name)", err)
		}
		o.nodeName = h
	}
	if reg.active() {
		if fs.NArg() > 0 {
			return problem.Usagef("unexpected arguments with --register")
		}
		return runRegister(env, &f, &o, &reg)
	}
	tok, err := token(env, fs.Changed, &o)
	if err != nil {
		return err
	}
	cfg, err := nodeconf.Load(o.root)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cl := joinclient.New(tok, env.Log)
	if f.DryRun {
		// A fetch spends the secret: a dry run only checks the server's key.
		jctx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		if err := cl.CheckServer(jctx); err != nil {
			var te *joinclient.TrustError
			if errors.As(err, &te) {
				return problem.Reject(tok.Address(), "%v; nothing was sent to it", te)
			}
			return err
		}
		return printJSON(env, map[string]any{"program": prog, "dry_run": true, "server": tok.Address(),
			"uuid": tok.UUID, "pinned": true, "fetched": false})
	}
	res, err := join(ctx, env, cfg, cl, &o)
	if err != nil {
		return err
	}
	if err := printJSON(env, res); err != nil {
		return err
	}
	if !o.follow {
		if o.exec != "" {
			return runOnce(ctx, env, cl.UUID(), res.configRevision, res.config, o.exec, execArgs)
		}
		return nil
	}
	return follow(ctx, env, cl, res.configRevision, res.config, o.exec, execArgs)
}

// token is the token of the one source the flags name.
func token(env *cli.Env, changed func(string) bool, o *opts) (joinapi.Token, error) {
	n := 0
	for _, set := range []bool{o.bootParam, o.tokenFile != "", o.uuid != "" || o.server != "" || o.secretFile != ""} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return joinapi.Token{}, problem.Usagef("no token: give --server, --uuid, --secret-file and --ca-pin, or --boot-param, or --token-file")
	case n > 1:
		return joinapi.Token{}, problem.Usagef("give one token source: --server/--uuid/--secret-file, --boot-param or --token-file")
	case changed("cmdline") && !o.bootParam:
		return joinapi.Token{}, problem.Usagef("--cmdline goes with --boot-param")
	}
	switch {
	case o.bootParam:
		data, err := os.ReadFile(o.cmdline)
		if err != nil {
			return joinapi.Token{}, problem.Reject(o.cmdline, "%v", unwrap(err))
		}
		cli.PrintWarning(env.Stderr, prog, "the kernel command line ("+o.cmdline+") is readable by every local user, and so is the secret in "+
			joinapi.BootParamKey+"=: it is single use and expires, and worth nothing once this node has fetched its documents")
		return joinclient.FromCmdline(o.cmdline, string(data), o.pins)
	case o.tokenFile != "":
		data, err := joinclient.ReadCredentialFile("--token-file", o.tokenFile)
		if err != nil {
			return joinapi.Token{}, err
		}
		return joinclient.FromText("--token-file "+o.tokenFile, string(data), o.pins)
	}
	if o.uuid == "" || o.secretFile == "" {
		return joinapi.Token{}, problem.Usagef("--server, --uuid and --secret-file go together (and --ca-pin)")
	}
	if len(o.pins) == 0 {
		return joinapi.Token{}, problem.Hint(problem.Usagef("--ca-pin: no pin of the master's certificate: no pin, no join"),
			"give --ca-pin sha256:<hex> as join-service slot add prints it in pins")
	}
	return joinclient.FromFlags(o.server, o.uuid, func() ([]byte, error) {
		if o.secretFile == "-" {
			return joinclient.ReadSecret(env.Stdin)
		}
		return joinclient.ReadCredentialFile("--secret-file", o.secretFile)
	}, o.pins)
}

func unwrap(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func printJSON(env *cli.Env, v any) error {
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// givePrivately says how node-join takes a secret instead of --secret.
const givePrivately = "put it in a file only root can read and give --secret-file FILE (or --secret-file - for standard input), or use --token-file or --boot-param"
