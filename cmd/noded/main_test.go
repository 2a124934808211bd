package main

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/fixture"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"noded": func() { os.Exit(cli.Main("noded", os.Args[1:], run)) },
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{Dir: "testdata", Cmds: map[string]func(*testscript.TestScript, bool, []string){
		"status":      fixture.Status,
		"clustercert": cmdClusterCert,
		"listen":      cmdListen,
	}})
}

// cmdClusterCert writes a new cluster certificate (server.pem) to FILE:
// clustercert FILE CN.
func cmdClusterCert(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: clustercert FILE CN")
	}
	pemData, err := certs.NewClusterCertificate(args[1], time.Hour)
	ts.Check(err)
	p := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(filepath.Dir(p), 0o755))
	ts.Check(os.WriteFile(p, pemData, 0o600)) //nolint:forbidigo // test fixture
}

// cmdListen holds a TCP port on 127.0.0.1 until the script ends and puts
// its number in $VAR: listen VAR.
func cmdListen(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: listen VAR")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	ts.Defer(func() { ln.Close() })
	ts.Setenv(args[0], strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
}
