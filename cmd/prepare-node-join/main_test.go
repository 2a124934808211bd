package main

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/fixture"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		prog: func() { os.Exit(cli.Main(prog, os.Args[1:], program.Run)) },
	})
}

// TestScripts runs testdata/*.txtar: the command line against a node root
// in $ROOT, with fakes for sshd -t and the restarts (internal/fixture).
// The condition [openssh-dsa] holds where this machine's OpenSSH still has
// DSA keys (ssh -Q key lists ssh-dss; 9.8 removed them).
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:   "testdata",
		Cmds:  fixture.Cmds(),
		Setup: fixture.Setup,
		Condition: func(cond string) (bool, error) {
			if cond != "openssh-dsa" {
				return false, fmt.Errorf("unknown condition %q", cond)
			}
			out, err := exec.Command("ssh", "-Q", "key").Output()
			return err == nil && slices.Contains(strings.Fields(string(out)), "ssh-dss"), nil
		},
	})
}
