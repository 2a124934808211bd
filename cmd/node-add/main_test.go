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
		"node-add": func() { os.Exit(cli.Main("node-add", os.Args[1:], run)) },
	})
}

// TestScripts runs testdata/*.txtar. "clusterinit DIR NAME" creates a
// cluster under DIR with internal/master/cluster, as cluster-init does; "status N
// PROG ARGS..." wants exit status N exactly (internal/fixture).
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"clusterinit": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 2 {
					ts.Fatalf("usage: clusterinit DIR NAME")
				}
				p, err := clusterinit.PlanInit(clusterinit.InitOptions{Root: ts.MkAbs(args[0]), ClusterName: args[1],
					MasterNode: "master." + args[1], MasterIP: "192.0.2.1"})
				ts.Check(err)
				ts.Check(p.Apply(context.Background(), slog.New(slog.DiscardHandler)))
			},
			"status": fixture.Status,
		},
	})
}
