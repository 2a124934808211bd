package main

import (
	"os"
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
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:   "testdata",
		Cmds:  fixture.Cmds(),
		Setup: fixture.Setup,
	})
}
