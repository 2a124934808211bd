package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/nodejoin/nodejoin/internal/problem"
	"github.com/nodejoin/nodejoin/internal/version"
)

// Env is what a program's run function may touch of the process: its
// standard streams and its logger. Tests give their own.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Log    *slog.Logger
}

// Flags are the flags every program has.
type Flags struct {
	Debug      bool
	Verbose    bool
	DryRun     bool
	help       bool
	version    bool
	completion string
	// subcommands, if set, gives the flag sets of the program's
	// subcommands, for --completion (Subcommands).
	subcommands func() map[string]*pflag.FlagSet
}

// Subcommands gives --completion the flag sets of the program's
// subcommands, keyed by their words after the program's name ("serve",
// "slot add"). It is called only for --completion, so a program builds
// them only then.
func (f *Flags) Subcommands(sets func() map[string]*pflag.FlagSet) { f.subcommands = sets }

// NewFlagSet returns a flag set with the common flags registered in f.
// usage is the text printed before the flag list by --help.
func NewFlagSet(prog, usage string, f *Flags) *pflag.FlagSet {
	fs := pflag.NewFlagSet(prog, pflag.ContinueOnError)
	fs.SortFlags = false
	fs.BoolVarP(&f.help, "help", "h", false, "show this help and exit")
	fs.BoolVar(&f.version, "version", false, "print the version and exit")
	fs.BoolVarP(&f.Debug, "debug", "d", false, "log debug messages to standard error")
	fs.BoolVarP(&f.Verbose, "verbose", "v", false, "log progress messages to standard error")
	fs.BoolVar(&f.DryRun, "dry-run", false, "check everything and print the plan; change nothing")
	// Hidden (no --help line, no man page entry): the packages run it
	// at build time to ship each program's completion (completion.go).
	fs.StringVar(&f.completion, "completion", "", "print the `SHELL` completion script (bash) and exit")
	_ = fs.MarkHidden("completion")
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	_ = fs.SetAnnotation("help", "usage", []string{usage}) // fails only for an unknown flag
	return fs
}

// errDone ends a run early with success (--help, --version).
var errDone = errors.New("done")

// Parse parses args. It handles --help and --version itself, and sets the
// log level of env from --debug and --verbose.
func Parse(env *Env, fs *pflag.FlagSet, f *Flags, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			f.help = true
		} else {
			return problem.UsageError(err)
		}
	}
	switch {
	case f.help:
		usage := fs.Lookup("help").Annotations["usage"][0]
		fmt.Fprintf(env.Stdout, "%s\n\nFlags:\n%s", strings.TrimRight(usage, "\n"), fs.FlagUsages())
		return errDone
	case f.version:
		fmt.Fprintf(env.Stdout, "%s %s\n", fs.Name(), version.String())
		return errDone
	case f.completion != "":
		var subs map[string]*pflag.FlagSet
		if f.subcommands != nil {
			subs = f.subcommands()
		}
		if err := printCompletion(env.Stdout, fs, subs, f.completion); err != nil {
			return err
		}
		return errDone
	}
	level := slog.LevelWarn
	if f.Verbose {
		level = slog.LevelInfo
	}
	if f.Debug {
		level = slog.LevelDebug
	}
	env.Log = newLogger(fs.Name(), env.Stderr, level)
	return nil
}

// newLogger logs text lines with the time first, in RFC 3339 with
// milliseconds and the local offset, so that a daemon's log (noded's goes
// to a file) and a run's progress can be put beside other logs.
func newLogger(prog string, w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey && a.Value.Kind() == slog.KindTime {
				a.Value = slog.StringValue(a.Value.Time().Format(timeFormat))
			}
			return a
		},
	})).With("prog", prog)
}

// timeFormat is RFC 3339 with milliseconds.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// Main runs run with the process's streams and returns the exit status,
// after printing a failed run's error as "prog: error: ..." lines and its
// hints as "prog: hint: ..." lines.
func Main(prog string, args []string, run func(env *Env, args []string) error) int {
	env := &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Log: newLogger(prog, os.Stderr, slog.LevelWarn)}
	return Run(prog, env, args, run)
}

// Run is Main with the streams given; tests call it.
func Run(prog string, env *Env, args []string, run func(env *Env, args []string) error) int {
	err := run(env, args)
	if errors.Is(err, errDone) {
		return problem.ExitOK
	}
	if err == nil {
		return problem.ExitOK
	}
	PrintError(env.Stderr, prog, err)
	code := problem.ExitCode(err)
	if code == problem.ExitUsage {
		PrintHint(env.Stderr, prog, "see "+prog+" --help")
	}
	return code
}

// PrintWarning writes one "prog: warning: ..." line: something was done
// but should change.
func PrintWarning(w io.Writer, prog, text string) {
	fmt.Fprintln(w, problem.Line(prog, problem.LineWarning, text))
}

// PrintHint writes one "prog: hint: ..." line.
func PrintHint(w io.Writer, prog, text string) {
	fmt.Fprintln(w, problem.Line(prog, problem.LineHint, text))
}

// PrintErrorLine writes one "prog: error: ..." line, for a program that
// reports several failures of its own (node-add, one per node).
func PrintErrorLine(w io.Writer, prog, text string) {
	fmt.Fprintln(w, problem.Line(prog, problem.LineError, text))
}

// PrintError writes err as "prog: error:" lines, then its hints.
func PrintError(w io.Writer, prog string, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		PrintErrorLine(w, prog, line)
	}
	for _, h := range problem.Hints(err) {
		PrintHint(w, prog, h)
	}
}

// RefuseSecretFlag turns a secret on the command line into a usage error
// with hint, the program's way to give it: a process's arguments are
// world-readable (/proc/PID/cmdline) and end up in shell histories. The
// value is never repeated.
func RefuseSecretFlag(args []string, hint string) error {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--secret" || strings.HasPrefix(a, "--secret=") {
			return problem.Hint(problem.Usagef("--secret: a secret is never taken on the command line"), hint)
		}
	}
	return nil
}
