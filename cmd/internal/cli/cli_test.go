package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/nodejoin/nodejoin/internal/problem"
)

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		wantCode   int
		wantStderr string
	}{
		{"ok", nil, 0, ""},
		{"failure", fmt.Errorf("writing /x: %w", errors.New("permission denied")), 1,
			"p: error: writing /x: permission denied\n"},
		{"usage", problem.Usagef("no arguments are expected"), 2,
			"p: error: no arguments are expected\np: hint: see p --help\n"},
		{"rejected", problem.Reject("/cluster_name", "%q does not match", "c2").WithHint("run node-cleanup"), 3,
			"p: error: invalid input: /cluster_name: \"c2\" does not match\np: hint: run node-cleanup\n"},
		{"several", &problem.RejectedError{Problems: []problem.Problem{{Where: "/a", What: "x"}, {Where: "/b", What: "y"}}}, 3,
			"p: error: invalid input: /a: x\np: error: invalid input: /b: y\n"},
		{"wrapped rejection", fmt.Errorf("reading: %w", problem.Reject("", "empty")), 3,
			"p: error: reading: invalid input: empty\n"},
		{"hinted failure", problem.Hint(errors.New("restarting sshd: exited 1"), "fix it"), 1,
			"p: error: restarting sshd: exited 1\np: hint: fix it\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			env := &Env{Stdout: &out, Stderr: &errb}
			code := Run("p", env, nil, func(*Env, []string) error { return tc.err })
			if code != tc.wantCode || errb.String() != tc.wantStderr {
				t.Errorf("got %d %q, want %d %q", code, errb.String(), tc.wantCode, tc.wantStderr)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		env := &Env{Stdout: &out, Stderr: &errb}
		code := Run("p", env, args, func(env *Env, args []string) error {
			var f Flags
			fs := NewFlagSet("p", "Usage: p [flags]", &f)
			fs.String("root", "/", "the `DIR`")
			if err := Parse(env, fs, &f, args); err != nil {
				return err
			}
			if f.DryRun {
				fmt.Fprintln(env.Stdout, "dry")
			}
			return nil
		})
		return code, out.String(), errb.String()
	}
	if code, out, _ := run("--help"); code != 0 || !bytes.Contains([]byte(out), []byte("Usage: p [flags]\n\nFlags:\n  -h, --help")) {
		t.Errorf("--help: %d %q", code, out)
	}
	if code, out, _ := run("--version"); code != 0 || out != "p devel\n" {
		t.Errorf("--version: %d %q", code, out)
	}
	if code, out, _ := run("--dry-run", "-d"); code != 0 || out != "dry\n" {
		t.Errorf("--dry-run: %d %q", code, out)
	}
	if code, _, errb := run("--nope"); code != 2 || errb != "p: error: unknown flag: --nope\np: hint: see p --help\n" {
		t.Errorf("--nope: %d %q", code, errb)
	}
}

// Every log line starts with its time in RFC 3339.
func TestLogTime(t *testing.T) {
	var b bytes.Buffer
	before := time.Now().Truncate(time.Millisecond)
	newLogger("p", &b, slog.LevelInfo).Info("serving", "port", 1811)
	line := b.String()
	stamp, rest, ok := strings.Cut(strings.TrimPrefix(line, "time="), " ")
	if !strings.HasPrefix(line, "time=") || !ok || rest != "level=INFO msg=serving prog=p port=1811\n" {
		t.Fatalf("log line %q", line)
	}
	at, err := time.Parse(time.RFC3339, stamp)
	if err != nil || at.Before(before) || at.After(time.Now()) || !strings.Contains(stamp, ".") {
		t.Errorf("time %q: %v, %v", stamp, at, err)
	}
}

// TestCompletion: the bash script completes flags, a DIR flag's value as
// directories, a flag's Values, and the positional arguments as Args says.
func TestCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("needs bash(1)")
	}
	var f Flags
	fs := NewFlagSet("demo-prog", "Usage: demo-prog", &f)
	fs.String("root", "/", "under `DIR`")
	fs.String("output", "text", "`FORMAT`")
	fs.Int("port", 0, "`PORT`")
	Values(fs, "output", "text", "json")
	f.Subcommands(func() map[string]*pflag.FlagSet {
		var sf Flags
		serve := NewFlagSet("demo-prog serve", "", &sf)
		serve.String("listen", "", "`ADDRESS`")
		add := NewFlagSet("demo-prog slot add", "", &sf)
		add.String("socket", "", "`PATH`")
		Args(add, ArgsFiles)
		return map[string]*pflag.FlagSet{"serve": serve, "slot add": add, "slot list": NewFlagSet("demo-prog slot list", "", &sf)}
	})
	var out strings.Builder
	env := &Env{Stdout: &out, Stderr: io.Discard}
	if err := Parse(env, fs, &f, []string{"--completion", "bash"}); !errors.Is(err, errDone) {
		t.Fatalf("Parse(--completion bash) = %v", err)
	}
	file := filepath.Join(t.TempDir(), "demo-prog")
	if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil { //nolint:forbidigo // a test's temp file
		t.Fatal(err)
	}
	dirs := t.TempDir()
	if err := os.Mkdir(filepath.Join(dirs, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"--r"}, "--root"},
		{[]string{"--"}, "--help --version --debug --verbose --dry-run --root --output --port"},
		{[]string{"-"}, "--help -h --version --debug -d --verbose -v --dry-run --root --output --port"},
		{[]string{"--output", ""}, "text json"},
		{[]string{"--output", "=", "j"}, "json"},
		{[]string{"--port", ""}, ""},
		{[]string{"--root", dirs + "/s"}, dirs + "/sub"},
		{[]string{"s"}, "serve slot"},
		{[]string{"--debug", "se"}, "serve"},
		{[]string{"serve", "--l"}, "--listen"},
		{[]string{"serve", "--r"}, ""},
		{[]string{"slot", ""}, "add list"},
		{[]string{"slot", "--"}, ""},
		{[]string{"slot", "add", "--s"}, "--socket"},
		{[]string{"slot", "add", "--socket", dirs + "/s"}, dirs + "/sub"},
		{[]string{"slot", "add", dirs + "/s"}, dirs + "/sub"},
		{[]string{"slot", "list", "--"}, "--help --version --debug --verbose --dry-run"},
	} {
		script := `source "$1"; shift
COMP_WORDS=(demo-prog "$@"); COMP_CWORD=$#; COMPREPLY=()
_nodejoin_demo_prog
printf '%s\n' "${COMPREPLY[@]}"`
		got, err := exec.Command("bash", append([]string{"-c", script, "bash", file}, tc.words...)...).Output()
		if err != nil {
			t.Fatal(err)
		}
		if g := strings.Join(strings.Fields(string(got)), " "); g != tc.want {
			t.Errorf("completing %q: %q, want %q", tc.words, g, tc.want)
		}
	}
	if err := Parse(env, fs, &f, []string{"--completion", "zsh"}); err == nil || err.Error() != `--completion: only bash is supported, not "zsh"` {
		t.Errorf("--completion zsh: %v", err)
	}
}
