package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
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
// cluster under DIR with lib/cluster, as cluster-init does; "status N
// PROG ARGS..." runs PROG as exec does and wants exit status N exactly.
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
				ts.Check(p.Apply(context.Background(), slog.New(slog.DiscardHandler)))
			},
			"status": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) < 2 {
					ts.Fatalf("usage: status N PROG [ARGS...]")
				}
				want, err := strconv.Atoi(args[0])
				ts.Check(err)
				got := 0
				if err := ts.Exec(args[1], args[2:]...); err != nil {
					var ee *exec.ExitError
					if !errors.As(err, &ee) {
						ts.Fatalf("%s: %v", args[1], err)
					}
					got = ee.ExitCode()
				}
				if got != want {
					ts.Fatalf("%s exited %d, want %d", args[1], got, want)
				}
			},
		},
	})
}
