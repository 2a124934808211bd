package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/pflag"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/jsondoc"
	"github.com/nodejoin/nodejoin/internal/master/joinservice"
	"github.com/nodejoin/nodejoin/internal/master/slotstore"
	"github.com/nodejoin/nodejoin/internal/problem"
	"github.com/nodejoin/nodejoin/schemas"
)

const slotUsage = `Usage: join-service slot add|list|show UUID|remove UUID|remove-stale --older-than D|set-config UUID [flags]

Manage the running daemon's slots over its root-only admin socket.

  add          stdin: {"uuid"?, "node_name"?, "config"?, "params"?, "dynamic"?,
               "secret"? (a dynamic pool's, to add to the pool), "ttl"? ("1h"),
               "uses"?, "reusable"?}
               stdout: {"uuid", "secret", "boot_param", "expires", "pins"}; the
               secret is shown this once and stored only as a hash
  list         stdout: every slot, oldest first
  show UUID    stdout: the slot, its config and its last report
  remove UUID  stdout: {"removed": UUID}
  remove-stale --older-than D   stdout: {"removed": N}: slots whose last report (or
               creation, if never seen) is older than D
  set-config UUID   stdin: the new config (text, at most 1 MiB)
               stdout: {"uuid", "config_revision"}`

// slotCommands are slot's commands and how many arguments each takes.
var slotCommands = map[string]int{"add": 0, "list": 0, "show": 1, "remove": 1, "remove-stale": 0, "set-config": 1}

// slotFlagSet is the flag set of slot's command cmd.
func slotFlagSet(cmd string, f *common, olderThan *time.Duration) *pflag.FlagSet {
	fs := cli.NewFlagSet("join-service slot "+cmd, slotUsage, &f.Flags)
	f.register(fs)
	if cmd == "remove-stale" {
		fs.DurationVar(olderThan, "older-than", 0, "remove slots not seen for `D` (2h, 30m)")
	}
	return fs
}

func slot(env *cli.Env, cmd string, args []string) error {
	var f common
	var olderThan time.Duration
	fs := slotFlagSet(cmd, &f, &olderThan)
	if err := cli.RefuseSecretFlag(args, givePrivately); err != nil {
		return err
	}
	if err := cli.Parse(env, fs, &f.Flags, args); err != nil {
		return err
	}
	n, ok := slotCommands[cmd]
	if !ok {
		return problem.Usagef("slot: unknown command %q: want add, list, show, remove, remove-stale or set-config", cmd)
	}
	if fs.NArg() != n {
		if n == 1 {
			return problem.Usagef("slot %s: want one UUID, got %d arguments", cmd, fs.NArg())
		}
		return problem.Usagef("slot %s: no arguments are expected, got %q", cmd, fs.Arg(0))
	}
	var uuid string
	if n == 1 {
		var err error
		if uuid, err = slotstore.CheckUUID(fs.Arg(0)); err != nil {
			return problem.Usagef("slot %s: %q is not a UUID (8-4-4-4-12 hex digits)", cmd, fs.Arg(0))
		}
	}
	if cmd == "remove-stale" && olderThan <= 0 {
		return problem.Usagef("slot remove-stale: --older-than D is required, and positive")
	}
	sock, err := f.socketPath()
	if err != nil {
		return err
	}
	cl := joinservice.NewAdminClient(sock)
	ctx := context.Background()
	var out any
	switch cmd {
	case "add":
		body, err := readAdd(env.Stdin)
		if err != nil {
			return err
		}
		if f.DryRun {
			fmt.Fprintln(env.Stdout, `{"dry_run": true}`)
			return nil
		}
		var a joinservice.AddAnswer
		err = cl.Do(ctx, http.MethodPost, joinservice.AdminSlots, nil, body, &a)
		out = a
		if err != nil {
			return adminErr("", err)
		}
	case "list":
		var l []joinservice.SlotView
		if err := cl.Do(ctx, http.MethodGet, joinservice.AdminSlots, nil, nil, &l); err != nil {
			return adminErr("", err)
		}
		if l == nil {
			l = []joinservice.SlotView{}
		}
		out = l
	case "show":
		var v joinservice.SlotView
		if err := cl.Do(ctx, http.MethodGet, "/admin/v1/slots/"+uuid, nil, nil, &v); err != nil {
			return adminErr(uuid, err)
		}
		out = v
	case "remove":
		var v map[string]string
		if f.DryRun {
			fmt.Fprintf(env.Stdout, "{\"would_remove\": %q}\n", uuid)
			return nil
		}
		if err := cl.Do(ctx, http.MethodDelete, "/admin/v1/slots/"+uuid, nil, nil, &v); err != nil {
			return adminErr(uuid, err)
		}
		out = v
	case "remove-stale":
		if f.DryRun {
			fmt.Fprintln(env.Stdout, `{"dry_run": true}`)
			return nil
		}
		var v joinservice.RemovedAnswer
		if err := cl.Do(ctx, http.MethodPost, joinservice.AdminRemoveStale, url.Values{"older_than": {olderThan.String()}}, nil, &v); err != nil {
			return adminErr("", err)
		}
		out = v
	case "set-config":
		text, err := io.ReadAll(io.LimitReader(env.Stdin, slotstore.MaxConfig+1))
		if err != nil {
			return fmt.Errorf("reading standard input: %w", err)
		}
		if len(text) > slotstore.MaxConfig {
			return problem.Reject("standard input", "the config is more than %d bytes (1 MiB)", slotstore.MaxConfig)
		}
		if f.DryRun {
			fmt.Fprintf(env.Stdout, "{\"would_set\": %q, \"bytes\": %d}\n", uuid, len(text))
			return nil
		}
		var v joinservice.ConfigSet
		if err := cl.Do(ctx, http.MethodPut, "/admin/v1/slots/"+uuid+"/config", nil, text, &v); err != nil {
			return adminErr(uuid, err)
		}
		out = v
	}
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// readAdd reads slot add's document as every program reads its stdin
// (lib/jsondoc: at most 1 MiB, one object, no duplicate keys, no trailing
// data, the schema, then the strict typed decode), and passes it on as
// read: the daemon checks it again.
func readAdd(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, jsondoc.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading standard input: %w", err)
	}
	var req joinservice.AddRequest
	if err := jsondoc.DecodeBytes(b, schemas.Get(schemas.SlotAdd), &req); err != nil {
		return nil, err
	}
	return b, nil
}

// adminErr maps the daemon's answer to the exit statuses: a refused
// input is 3 (nothing changed), anything else 1.
func adminErr(where string, err error) error {
	var ae *joinservice.AdminError
	if errors.As(err, &ae) && ae.Rejected() {
		return problem.Reject(where, "%s", ae.Body.Message)
	}
	if errors.Is(err, joinservice.ErrNotRunning) {
		return problem.Hint(err, "start it: systemctl start join-service, or join-service serve")
	}
	return err
}
