package main

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/cmd/internal/nodeprog"
	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/node/daemonsetup"
	"github.com/nodejoin/nodejoin/internal/node/prepare"
)

// The join's two programs, to join a node in a script before it leaves
// (their own mains are tested in their folders).
var (
	prepareProgram = nodeprog.Program[joindoc.Prepare]{Name: "prepare-node-join", Decode: joindoc.DecodePrepare, Planner: prepare.Planner}
	setupProgram   = nodeprog.Program[joindoc.DaemonSetup]{Name: "node-daemon-setup", Decode: joindoc.DecodeDaemonSetup, Planner: daemonsetup.Planner}
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		prog:                func() { os.Exit(cli.Main(prog, os.Args[1:], program.Run)) },
		"prepare-node-join": func() { os.Exit(cli.Main("prepare-node-join", os.Args[1:], prepareProgram.Run)) },
		"node-daemon-setup": func() { os.Exit(cli.Main("node-daemon-setup", os.Args[1:], setupProgram.Run)) },
	})
}

// TestScripts runs testdata/*.txtar: a node root in $ROOT joins with the
// join's programs and leaves with node-cleanup, with fakes for sshd -t
// and the daemons (internal/fixture).
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:   "testdata",
		Cmds:  fixture.Cmds(),
		Setup: fixture.Setup,
	})
}
