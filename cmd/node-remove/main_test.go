package main

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/master/clusterinit"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		prog: func() { os.Exit(cli.Main(prog, os.Args[1:], run)) },
	})
}

// TestScripts runs testdata/*.txtar; "clusterinit DIR NAME" makes a
// cluster under DIR as cluster-init does.
func TestScripts(t *testing.T) {
	cmds := fixture.Cmds()
	cmds["clusterinit"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 2 {
			ts.Fatalf("usage: clusterinit DIR NAME")
		}
		p, err := clusterinit.PlanInit(clusterinit.InitOptions{Root: ts.MkAbs(args[0]), ClusterName: args[1],
			MasterNode: "master." + args[1], MasterIP: "192.0.2.1"})
		ts.Check(err)
		ts.Check(p.Apply(context.Background(), slog.New(slog.DiscardHandler)))
	}
	testscript.Run(t, testscript.Params{Dir: "testdata", Cmds: cmds})
}
