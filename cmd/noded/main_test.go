package main

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/nodejoin/nodejoin/lib/cli"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"noded": func() { os.Exit(cli.Main("noded", os.Args[1:], run)) },
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{Dir: "testdata"})
}
