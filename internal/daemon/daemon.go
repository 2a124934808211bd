// Package daemon runs the node's configured helper commands: the sshd
// configuration check and the restart commands of sshd and the node daemon.
// Commands are argument lists from node.json, never shell strings.
package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"time"
)

// Timeout bounds one command.
const Timeout = 2 * time.Minute

// Run runs argv with no standard input and its output captured. A daemon
// that the command leaves running in the background may keep the output
// pipe open: Run does not wait for it (WaitDelay), since on the master's
// side the SSH session would otherwise hang until the daemon exits.
func Run(ctx context.Context, log *slog.Logger, argv []string) error {
	if len(argv) == 0 {
		return errors.New("empty command")
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = time.Second
	log.Info("running", "command", strings.Join(argv, " "))
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil // exited 0; a child it started still holds the pipe
	}
	if err == nil {
		log.Debug("command done", "command", argv[0], "output", tail(out.String()))
		return nil
	}
	msg := err.Error()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() {
		msg = fmt.Sprintf("exited %d", ee.ExitCode())
	}
	if ctx.Err() != nil {
		msg = fmt.Sprintf("did not finish within %s", Timeout)
	}
	if t := tail(out.String()); t != "" {
		msg += ": " + t
	}
	return fmt.Errorf("command %q %s", strings.Join(argv, " "), msg)
}

// Output runs argv like Run and returns its standard output, for a command
// that reports something (ssh -Q key). Its standard error only goes into
// the error.
func Output(ctx context.Context, log *slog.Logger, argv []string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, errors.New("empty command")
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	cmd.WaitDelay = time.Second
	log.Debug("running", "command", strings.Join(argv, " "))
	if err := cmd.Run(); err != nil {
		msg := err.Error()
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.Exited() {
			msg = fmt.Sprintf("exited %d", ee.ExitCode())
		}
		if t := tail(errb.String()); t != "" {
			msg += ": " + t
		}
		return nil, fmt.Errorf("command %q %s", strings.Join(argv, " "), msg)
	}
	return out.Bytes(), nil
}

// tail keeps the last lines of a command's output for an error message.
func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, "; ")
}
