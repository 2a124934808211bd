// Package problem is the error vocabulary that every layer shares: a
// rejected input (RejectedError, Problem, Reject: exit 3), a usage error
// (exit 2), hints, and the exit status an error carries. It imports nothing
// of the project, so that a decoder or a plan can say "this input is
// rejected" without importing the command line (cmd/internal/cli prints
// these errors and exits with their status).
package problem

import (
	"errors"
	"fmt"
	"strings"
)

// Exit statuses shared by every program.
const (
	ExitOK       = 0 // done: changed, or already so
	ExitFailed   = 1 // failed while applying; the node was put back as it was
	ExitUsage    = 2 // bad command line
	ExitRejected = 3 // input rejected; nothing changed
)

// The kinds of line a program writes on standard error besides its log:
// "prog: error: <where>: <what>", "prog: hint: ...", "prog: warning: ...".
// The programs print them (cmd/internal/cli) and the master reads a remote
// program's back (internal/master/join), so the form has this one home.
const (
	LineError   = "error"
	LineHint    = "hint"
	LineWarning = "warning"
)

// Line is one line of that form, without its newline.
func Line(prog, kind, text string) string { return prog + ": " + kind + ": " + text }

// CutLine splits a line of that form at its first ": kind: " into the
// program's name and the text; ok is false when the line has no such part.
func CutLine(line, kind string) (prog, text string, ok bool) {
	return strings.Cut(line, ": "+kind+": ")
}

// exitCoder is an error that knows its exit status.
type exitCoder interface{ ExitCode() int }

type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }
func (usageError) ExitCode() int   { return ExitUsage }

// UsageError marks err as a command-line error (exit 2).
func UsageError(err error) error { return usageError{err} }

// Usagef is UsageError of a formatted message.
func Usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// Problem is one reason an input was rejected: Where is a JSON pointer or a
// path, What says what is wrong with it. Neither may contain a secret.
type Problem struct {
	Where string
	What  string
}

func (p Problem) String() string {
	if p.Where == "" {
		return p.What
	}
	return p.Where + ": " + p.What
}

// RejectedError is a refused input (exit 3): one or more problems, each
// printed on its own line, then hints.
type RejectedError struct {
	Problems []Problem
	Hints    []string
}

func (e *RejectedError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = "invalid input: " + p.String()
	}
	return strings.Join(lines, "\n")
}

// ExitCode implements exitCoder.
func (*RejectedError) ExitCode() int { return ExitRejected }

// Reject returns a RejectedError with one problem.
func Reject(where, format string, args ...any) *RejectedError {
	return &RejectedError{Problems: []Problem{{Where: where, What: fmt.Sprintf(format, args...)}}}
}

// WithHint adds hint lines to a rejection.
func (e *RejectedError) WithHint(hints ...string) *RejectedError {
	e.Hints = append(e.Hints, hints...)
	return e
}

type hinted struct {
	err   error
	hints []string
}

func (e hinted) Error() string { return e.err.Error() }
func (e hinted) Unwrap() error { return e.err }

// Hint attaches hint lines to any error; Main prints them after the error.
func Hint(err error, hints ...string) error {
	if err == nil {
		return nil
	}
	return hinted{err, hints}
}

// ExitCode returns the exit status for err: 0 for nil, the status an error
// in the chain carries, else 1 (an unknown error is a failure, as in restic).
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ec exitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return ExitFailed
}

// Hints collects the hints of every layer of err.
func Hints(err error) []string {
	var out []string
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch h := e.(type) { //nolint:errorlint // walks every layer of the chain itself
		case hinted:
			out = append(out, h.hints...)
		case *RejectedError:
			out = append(out, h.Hints...)
		}
	}
	return out
}
