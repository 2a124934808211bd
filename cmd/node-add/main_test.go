package main

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/nodejoin/nodejoin/lib/cli"
	"github.com/nodejoin/nodejoin/lib/cluster"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"node-add": func() { os.Exit(cli.Main("node-add", os.Args[1:], run)) },
	})
}

// TestScripts runs testdata/*.txtar. "clusterinit DIR NAME" creates a
// cluster under DIR with lib/cluster, as cluster-init does.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"clusterinit": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 2 {
					ts.Fatalf("usage: clusterinit DIR NAME")
				}
				p, err := cluster.PlanInit(cluster.InitOptions{Root: ts.MkAbs(args[0]), ClusterName: args[1],
					MasterNode: "master." + args[1], MasterIP: "192.0.2.1"})
				ts.Check(err)
				ts.Check(p.Apply())
			},
		},
	})
}
