package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/problem"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		prog: func() { os.Exit(cli.Main(prog, os.Args[1:], run)) },
	})
}

// TestScripts runs testdata/*.txtar against a master root in $ROOT, with
// the logging fake for sshd -t and the reload (internal/fixture) and fakes
// of useradd and userdel that edit $ROOT/etc/passwd.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:   "testdata",
		Cmds:  fixture.Cmds(),
		Setup: setup,
	})
}

const fakeUser = `#!/bin/sh
for a; do name=$a; done
echo "$(basename "$0") $*" >> "$WORK/commands.log"
[ ! -e "$WORK/fail-$(basename "$0")" ] || { echo "$0: simulated failure" >&2; exit 1; }
case $(basename "$0") in
useradd) echo "$name:x:999:999:nodejoin machine callback:/nonexistent:/usr/sbin/nologin" >> "$ROOT/etc/passwd" ;;
userdel) grep -v "^$name:" "$ROOT/etc/passwd" > "$ROOT/etc/passwd.new"; cat "$ROOT/etc/passwd.new" > "$ROOT/etc/passwd"; rm "$ROOT/etc/passwd.new" ;;
esac
`

func setup(env *testscript.Env) error {
	if err := fixture.Setup(env); err != nil {
		return err
	}
	bin := filepath.Join(env.WorkDir, "fakebin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	for _, n := range []string{"useradd", "userdel"} {
		if err := os.WriteFile(filepath.Join(bin, n), []byte(fakeUser), 0o755); err != nil {
			return err
		}
	}
	env.Setenv("PATH", bin+string(os.PathListSeparator)+env.Getenv("PATH"))
	return os.MkdirAll(filepath.Join(env.WorkDir, "root", "var", "lib"), 0o755)
}

// TestExitStatus: refusals exit 3, usage errors 2, and neither changes
// anything.
func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		name, stdin string
		args        []string
		want        int
	}{
		{"empty object", "{}", nil, problem.ExitRejected},
		{"bad key", `{"node": "node1", "public_key": "ssh-ed25519 AAAA"}`, nil, problem.ExitRejected},
		{"port outside range", `{"node": "node1", "public_key": "` + key1 + `", "port": 30000}`, nil, problem.ExitRejected},
		{"bad revoke name", "", []string{"--revoke", "a b"}, problem.ExitRejected},
		{"bad range", "{}", []string{"--port-range", "5-2"}, problem.ExitUsage},
		{"bad user", "{}", []string{"--user", "Root"}, problem.ExitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := fixture.NewRoot(t)
			before, err := fixture.Tree(root)
			if err != nil {
				t.Fatal(err)
			}
			var out, errs bytes.Buffer
			env := &cli.Env{Stdin: strings.NewReader(tc.stdin), Stdout: &out, Stderr: &errs}
			if got := cli.Run(prog, env, append([]string{"--root", root}, tc.args...), run); got != tc.want {
				t.Errorf("exit %d, want %d; stderr:\n%s", got, tc.want, &errs)
			}
			if after, _ := fixture.Tree(root); after != before {
				t.Errorf("the root changed:\n%s\nwas:\n%s", after, before)
			}
		})
	}
}

const key1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOZ4JPPa70SIJBMkC57XTmA3vVR303EPi7z3LAc9XB4y c1"
