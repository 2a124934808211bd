// Join-service is the master's rendezvous cache for pull mode: booting
// machines fetch their join documents from it with a one-time secret and
// report back; the admin subcommands add and manage their slots while the
// daemon runs. See doc/join-service.8.md.
package main

import (
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
)

func main() { os.Exit(cli.Main("join-service", os.Args[1:], run)) }

const usage = `Usage: join-service [flags] COMMAND [flags] [ARGS]

The master's rendezvous cache (pull mode): a machine booted with
nodejoin.rendezvous=<uuid>:<host>[:<port>]:<secret>:sha256=<pin> fetches its
join documents over HTTPS with the one-time secret, applies them (node-join)
and reports back; after "joined" the master records the node as node-add
does and pushes ssconf to every node.

Commands:
  serve                         run the daemon (HTTPS API, admin socket, audit log)
  slot add                      add a slot from the JSON document on stdin; prints its secret once
  slot list                     every slot, oldest first (no configs, never secrets)
  slot show UUID                one slot with its config and last report
  slot remove UUID              delete a slot
  slot remove-stale --older-than D   delete slots not seen for D; prints {"removed": N}
  slot set-config UUID          replace a slot's config with standard input (text, up to 1 MiB)
  requests list                 auto-registration's records: adverts and direct requests
  requests accept|reject NAME   register NAME (after its parent), or never
  requests forget NAME          delete NAME's record
  requests expect NAME SHA256:...   pre-pin NAME's host key
  requests token                a registration token, printed once
  install-window --for D        auto-accept for D (local-network and anything modes)

The slot commands talk to the running daemon on its root-only unix socket.
Run "join-service COMMAND --help" for a command's flags.`

// common are the flags every command has.
type common struct {
	cli.Flags
	root   string
	socket string
}

func (c *common) register(fs interface {
	StringVar(p *string, name, value, usage string)
}) {
	fs.StringVar(&c.root, "root", "/", "take every path under `DIR` (tests and QA)")
	fs.StringVar(&c.socket, "socket", "", "the admin socket `PATH` (default <run dir>/join-service.sock, /run/nodejoin)")
}

// socketPath is --socket, else the run directory's join-service.sock.
func (c *common) socketPath() (string, error) {
	if c.socket != "" {
		return c.socket, nil
	}
	cfg, err := nodeconf.Load(c.root)
	if err != nil {
		return "", err
	}
	return cfg.Path(filepath.Join(cfg.RunDir, "join-service.sock")), nil
}

func run(env *cli.Env, args []string) error {
	var f cli.Flags
	fs := cli.NewFlagSet("join-service", usage, &f)
	fs.SetInterspersed(false)
	f.Subcommands(subcommands)
	if err := cli.Parse(env, fs, &f, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return problem.Usagef("no command: want serve, slot, requests or install-window")
	}
	switch rest[0] {
	case "serve":
		return serve(env, rest[1:])
	case "slot":
		if len(rest) < 2 {
			return problem.Usagef("slot: want one of add, list, show, remove, remove-stale, set-config")
		}
		return slot(env, rest[1], rest[2:])
	case "requests":
		if len(rest) < 2 {
			return problem.Usagef("requests: want one of list, accept, reject, forget, expect, token")
		}
		return requests(env, rest[1], rest[2:])
	case "install-window":
		return requests(env, "install-window", rest[1:])
	}
	return problem.Usagef("unknown command %q: want serve, slot, requests or install-window", rest[0])
}

// subcommands are every command's flag set, for --completion.
func subcommands() map[string]*pflag.FlagSet {
	sets := map[string]*pflag.FlagSet{"serve": serveFlagSet(&serveFlags{})}
	for cmd := range slotCommands {
		sets["slot "+cmd] = slotFlagSet(cmd, &common{}, new(time.Duration))
	}
	for cmd := range requestsCommands {
		key := "requests " + cmd
		if cmd == "install-window" {
			key = cmd
		}
		sets[key] = requestsFlagSet(cmd, &requestFlags{})
	}
	return sets
}

// givePrivately says how join-service takes a secret instead of --secret.
const givePrivately = `give a dynamic pool's secret in the document on standard input: {"dynamic": true, "secret": "..."}`
