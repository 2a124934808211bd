package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"time"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/node/joinclient"
)

// follow runs the program with the config fetched with the documents, then
// waits on the master (a long poll, no busy polling) and runs it again each
// time the config changes, until SIGINT or SIGTERM (exit 0) or a refusal
// (the slot removed: exit 3).
func follow(ctx context.Context, env *cli.Env, cl *joinclient.Client, rev int64, config []byte, prog string, args []string) error {
	runConfig(ctx, env, cl.UUID(), rev, config, prog, args)
	for {
		ans, err := cl.PollConfig(ctx, rev, joinapi.DefaultWait)
		if ctx.Err() != nil {
			return nil // stopped by a signal
		}
		if err != nil {
			return err
		}
		if ans == nil || ans.Revision <= rev {
			continue
		}
		rev = ans.Revision
		runConfig(ctx, env, cl.UUID(), rev, ans.Config, prog, args)
	}
}

// runOnce runs the program once with the config fetched with the
// documents (first-boot user-data hands node-join what did not fit in it):
// the node has joined either way, but a failed program fails the run.
func runOnce(ctx context.Context, env *cli.Env, slot string, rev int64, config []byte, prog string, args []string) error {
	if err := execConfig(ctx, env, slot, rev, config, prog, args); err != nil {
		return fmt.Errorf("the node has joined, but %w", err)
	}
	return nil
}

// runConfig runs the program with the config on standard input; its output
// goes to standard error (standard output holds node-join's result). A
// failure is logged and following goes on: the next config may fix it.
func runConfig(ctx context.Context, env *cli.Env, slot string, rev int64, config []byte, prog string, args []string) {
	if err := execConfig(ctx, env, slot, rev, config, prog, args); err != nil {
		cli.PrintWarning(env.Stderr, "node-join", err.Error())
	}
}

// execConfig runs the program with the config on standard input; its
// output goes to standard error (standard output holds node-join's result).
func execConfig(ctx context.Context, env *cli.Env, slot string, rev int64, config []byte, prog string, args []string) error {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Stdin = bytes.NewReader(config)
	cmd.Stdout, cmd.Stderr = env.Stderr, env.Stderr
	cmd.Env = append(cmd.Environ(), "NODEJOIN_SLOT="+slot, "NODEJOIN_CONFIG_REVISION="+strconv.FormatInt(rev, 10))
	cmd.WaitDelay = 5 * time.Second
	env.Log.Info("running", "program", prog, "config_revision", rev)
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("%s exited %d with config revision %d", prog, ee.ExitCode(), rev)
		}
		return fmt.Errorf("running %s: %w", prog, err)
	}
	return nil
}
