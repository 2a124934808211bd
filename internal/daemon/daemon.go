// Package daemon runs the machine's configured helper commands: the sshd
// configuration check and the restart commands of sshd and the node daemon
// (node.json), and the machine callback's unit and account commands.
//
// A Command is not a []string: one comes only from decoding a configuration
// (node.json, or the journal that recorded it) or from Builtin, a default
// written in the source (.golangci.yml lets only the configurations' packages
// call it), so no document field or other string list reaches exec by
// accident. It is an argument list, never a shell string.
package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// Timeout bounds one command.
const Timeout = 2 * time.Minute

// Command is one helper command: a program and its arguments.
type Command struct{ argv []string }

// Builtin is a command written in the program's source: a default of a
// node.json key, or one of the machine callback's own commands.
func Builtin(argv ...string) Command { return Command{argv: slices.Clone(argv)} }

// With is c with operands appended (useradd's account name).
func (c Command) With(operands ...string) Command {
	return Command{argv: append(slices.Clone(c.argv), operands...)}
}

// Argv is a copy of the argument list.
func (c Command) Argv() []string { return slices.Clone(c.argv) }

// IsZero says c names no command (an optional step left out).
func (c Command) IsZero() bool { return len(c.argv) == 0 }

func (c Command) String() string { return strings.Join(c.argv, " ") }

// LogValue logs the argument list as a list.
func (c Command) LogValue() slog.Value { return slog.AnyValue(c.argv) }

// MarshalJSON writes the argument list (the journal's record of a restart).
func (c Command) MarshalJSON() ([]byte, error) { return json.Marshal(c.argv) }

// UnmarshalJSON reads an argument list: a configuration's key, checked
// against its schema first, or the journal's record.
func (c *Command) UnmarshalJSON(data []byte) error {
	var argv []string
	if err := json.Unmarshal(data, &argv); err != nil {
		return errors.New("a command is a list of strings")
	}
	c.argv = argv
	return nil
}

// Run runs c with no standard input and its output captured. A daemon
// that the command leaves running in the background may keep the output
// pipe open: Run does not wait for it (WaitDelay), since on the master's
// side the SSH session would otherwise hang until the daemon exits.
func Run(ctx context.Context, log *slog.Logger, c Command) error {
	argv := c.argv
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

// Output runs c like Run and returns its standard output, for a command
// that reports something (ssh -Q key). Its standard error only goes into
// the error.
func Output(ctx context.Context, log *slog.Logger, c Command) ([]byte, error) {
	argv := c.argv
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
