package main

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/master/clusterinit"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"node-list": func() { os.Exit(cli.Main("node-list", os.Args[1:], run)) },
	})
}

// TestScripts runs testdata/*.txtar. "clusterinit DIR NAME" creates a
// cluster under DIR as cluster-init does; "record DIR NODE IP VIA
// HOSTKEY KEYFILE" records a joined node as node-add or join-service do.
func TestScripts(t *testing.T) {
	cmds := fixture.Cmds()
	cmds["clusterinit"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 2 {
			ts.Fatalf("usage: clusterinit DIR NAME")
		}
		p, err := clusterinit.PlanInit(clusterinit.InitOptions{Root: ts.MkAbs(args[0]), ClusterName: args[1],
			MasterNode: "master." + args[1], MasterIP: "127.0.0.1"})
		ts.Check(err)
		ts.Check(p.Apply(context.Background(), slog.New(slog.DiscardHandler)))
	}
	cmds["record"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 6 {
			ts.Fatalf("usage: record DIR NODE IP VIA HOSTKEY KEYFILE")
		}
		c, err := cluster.Open(ts.MkAbs(args[0]))
		ts.Check(err)
		_, err = c.RecordNode(cluster.Node{Name: args[1], PrimaryIP: args[2], Via: args[3], HostKey: args[4], RootPublicKey: ts.ReadFile(args[5])})
		ts.Check(err)
	}
	testscript.Run(t, testscript.Params{Dir: "testdata", Cmds: cmds})
}
