package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/fixture"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		prog: func() { os.Exit(cli.Main(prog, os.Args[1:], run)) },
	})
}

// TestScripts runs testdata/*.txtar against a node root in $ROOT, with a
// fake systemctl on PATH that logs its arguments to $WORK/commands.log
// and fails while $WORK/fail-systemctl exists.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:  "testdata",
		Cmds: fixture.Cmds(),
		Setup: func(env *testscript.Env) error {
			if err := fixture.Setup(env); err != nil {
				return err
			}
			bin := filepath.Join(env.WorkDir, "fakebin")
			if err := os.MkdirAll(bin, 0o755); err != nil {
				return err
			}
			fake := "#!/bin/sh\necho \"systemctl $*\" >> \"$WORK/commands.log\"\n[ ! -e \"$WORK/fail-systemctl\" ] || { echo 'systemctl: simulated failure' >&2; exit 1; }\n"
			if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte(fake), 0o755); err != nil {
				return err
			}
			env.Setenv("PATH", bin+string(os.PathListSeparator)+env.Getenv("PATH"))
			return nil
		},
	})
}
