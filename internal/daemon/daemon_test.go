package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name    string
		argv    []string
		wantErr string
	}{
		{"ok", []string{"/bin/true"}, ""},
		{"exit", []string{"/bin/sh", "-c", "echo one; echo two >&2; exit 3"}, `command "/bin/sh -c echo one; echo two >&2; exit 3" exited 3: one; two`},
		{"missing", []string{"/nonexistent/cmd"}, `command "/nonexistent/cmd" fork/exec /nonexistent/cmd: no such file or directory`},
		{"empty", nil, "empty command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Run(context.Background(), quiet, Builtin(tc.argv...))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.wantErr {
				t.Errorf("got %q\nwant %q", got, tc.wantErr)
			}
		})
	}
}

func TestOutput(t *testing.T) {
	for _, tc := range []struct {
		name, want, wantErr string
		argv                []string
	}{
		{"stdout only", "ssh-rsa\nssh-dss\n", "", []string{"/bin/sh", "-c", "echo ssh-rsa; echo noise >&2; echo ssh-dss"}},
		{"exit", "", `command "/bin/sh -c echo out; echo why >&2; exit 255" exited 255: why`, []string{"/bin/sh", "-c", "echo out; echo why >&2; exit 255"}},
		{"missing", "", `command "/nonexistent/ssh" fork/exec /nonexistent/ssh: no such file or directory`, []string{"/nonexistent/ssh"}},
		{"empty", "", "empty command", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Output(context.Background(), quiet, Builtin(tc.argv...))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.wantErr || string(out) != tc.want {
				t.Errorf("got %q, %q\nwant %q, %q", out, got, tc.want, tc.wantErr)
			}
		})
	}
}

// A restart command that leaves a daemon holding its output pipe returns
// when the command exits, not when the daemon does.
func TestRunDoesNotWaitForBackgroundDaemon(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pid")
	start := time.Now()
	err := Run(context.Background(), quiet, Builtin("/bin/sh", "-c", "sleep 30 & echo $! > "+pidfile+"; echo started"))
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Run waited %s for the background daemon", d)
	}
	if data, err := os.ReadFile(pidfile); err == nil {
		var pid int
		if _, err := fmtSscan(string(data), &pid); err == nil {
			if p, err := os.FindProcess(pid); err == nil {
				_ = p.Kill()
			}
		}
	}
}

func fmtSscan(s string, pid *int) (int, error) { return fmt.Sscan(s, pid) }

// A Command reads and writes the argument list a configuration and the
// journal hold, and nothing else: a shell string is refused.
func TestCommandJSON(t *testing.T) {
	var c Command
	if err := json.Unmarshal([]byte(`["/usr/sbin/sshd", "-t"]`), &c); err != nil {
		t.Fatal(err)
	}
	if got, err := json.Marshal(c); err != nil || string(got) != `["/usr/sbin/sshd","-t"]` {
		t.Errorf("marshalled %s, %v", got, err)
	}
	if c.String() != "/usr/sbin/sshd -t" {
		t.Errorf("String %q", c.String())
	}
	if err := json.Unmarshal([]byte(`"sshd -t"`), &c); err == nil {
		t.Errorf("a shell string was taken: %q", c.String())
	}
}

// With appends to a copy: two operands given to one configured command
// never share an argument list.
func TestWith(t *testing.T) {
	base := Builtin("useradd", "--system")
	a, b := base.With("a"), base.With("b")
	if a.String() != "useradd --system a" || b.String() != "useradd --system b" || base.String() != "useradd --system" {
		t.Errorf("got %q, %q, base %q", a, b, base)
	}
	argv := a.Argv()
	argv[0] = "rm"
	if a.String() != "useradd --system a" {
		t.Errorf("Argv shares the list: %q", a)
	}
}
