// Callback-grant lets a node that the master cannot reach keep a reverse
// SSH tunnel to it: a port of the callback range, and the node's callback
// key allowed to open exactly that one forward. See doc/callback-grant.8.md.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/apply"
	"github.com/nodejoin/nodejoin/internal/hostname"
	"github.com/nodejoin/nodejoin/internal/jsondoc"
	"github.com/nodejoin/nodejoin/internal/master/callback"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
	"github.com/nodejoin/nodejoin/schemas"
)

const prog = "callback-grant"

const usage = `Usage: callback-grant [flags] < request.json
       callback-grant --revoke NODE [flags]
       callback-grant --enable | --disable [flags]

On the master: give the node named in the request a port of the callback
range and let its callback public key open exactly one remote forward,
localhost:PORT, as the restricted callback user; install sshd's Match block
for that user once (sshd -t, then reload) and create the user if missing.
--revoke takes a node's grant away again, and with the last grant everything
callback-grant added. Prints a JSON result on standard output.
Exit status: 0 done, 1 failed and rolled back, 2 usage, 3 input rejected.`

func main() { os.Exit(cli.Main(prog, os.Args[1:], run)) }

func run(env *cli.Env, args []string) error {
	var f cli.Flags
	o := callback.DefaultOptions()
	fs := cli.NewFlagSet(prog, usage, &f)
	root := fs.String("root", "/", "take every path under `DIR` (tests and QA)")
	revoke := fs.String("revoke", "", "take `NODE`'s grant away; read no document")
	enable := fs.Bool("enable", false, "put the callback account and sshd's block in place without a grant, for join-service serve --callback; read no document")
	disable := fs.Bool("disable", false, "undo --enable (with no grant left, the files and the account go as with the last revoke); read no document")
	fs.StringVar(&o.User, "user", o.User, "the callback `USER` on this master")
	portRange := fs.String("port-range", fmt.Sprintf("%d-%d", o.First, o.Last), "`FIRST-LAST`: the ports nodes may be given")
	fs.IntVar(&o.ClientAliveInterval, "client-alive-interval", o.ClientAliveInterval, "`SECONDS` between sshd's probes of a callback session")
	fs.IntVar(&o.ClientAliveCountMax, "client-alive-count-max", o.ClientAliveCountMax, "unanswered probes (`N`) before sshd drops the session and frees its port")
	if err := cli.Parse(env, fs, &f, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return problem.Usagef("no arguments are expected; the request is read on standard input")
	}
	if err := parseRange(*portRange, &o); err != nil {
		return err
	}
	if o.ClientAliveInterval < 1 || o.ClientAliveCountMax < 1 {
		return problem.Usagef("--client-alive-interval and --client-alive-count-max must be at least 1")
	}
	if !userRE(o.User) {
		return problem.Usagef("--user %q is not a user name (lower-case letters, digits, _ and -)", o.User)
	}
	ctx := context.Background()
	cfg, err := nodeconf.Load(*root)
	if err != nil {
		return err
	}
	if (*revoke != "") && (*enable || *disable) || *enable && *disable {
		return problem.Usagef("--revoke, --enable and --disable are each a command of their own")
	}
	var res *callback.Result
	switch {
	case *enable || *disable:
		if err := apply.Recover(ctx, cfg, env.Log, f.DryRun); err != nil {
			return err
		}
		if *enable {
			res, err = callback.Enable(ctx, cfg, env.Log, o, f.DryRun)
		} else {
			res, err = callback.Disable(ctx, cfg, env.Log, o, f.DryRun)
		}
	case *revoke != "":
		if err := hostname.Check(*revoke); err != nil {
			return problem.Reject("--revoke", "%q is not a node name: %v", *revoke, err)
		}
		if err := apply.Recover(ctx, cfg, env.Log, f.DryRun); err != nil {
			return err
		}
		res, err = callback.Revoke(ctx, cfg, env.Log, o, *revoke, f.DryRun)
	default:
		var req callback.Request
		if err := jsondoc.Decode(env.Stdin, schemas.Get(schemas.CallbackGrant), &req); err != nil {
			return err
		}
		if err := apply.Recover(ctx, cfg, env.Log, f.DryRun); err != nil {
			return err
		}
		res, err = callback.Grant(ctx, cfg, env.Log, o, &req, f.DryRun)
	}
	if err != nil {
		return err
	}
	res.Program = prog
	for _, w := range res.Warnings {
		cli.PrintWarning(env.Stderr, prog, w)
	}
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

func parseRange(s string, o *callback.Options) error {
	if err := callback.ParseRange(s, o); err != nil {
		return problem.Usagef("--port-range %v", err)
	}
	return nil
}

func userRE(s string) bool {
	if s == "" || len(s) > 32 || !(s[0] == '_' || s[0] >= 'a' && s[0] <= 'z') {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
