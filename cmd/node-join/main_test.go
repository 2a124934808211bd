package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/joinapi"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		prog: func() { os.Exit(cli.Main(prog, os.Args[1:], run)) },
	})
}

// TestScripts runs testdata/*.txtar against a node root in $ROOT
// (fixture.Setup) with join-service and cluster-init on the PATH; the
// condition [root] holds when the test runs as root. Beside
// fixture.Cmds:
//
//	freeport VAR                   a free loopback port in $VAR
//	waitsock PATH                  wait until something listens on the unix socket
//	waitfile PATH                  wait until PATH exists
//	cutproxy VAR PORT              a TCP proxy to 127.0.0.1:PORT on a free port
//	                               (in $VAR) that cuts its first connection after
//	                               4 KiB of answer: the handshake passes, the
//	                               server answers in full, the client gets part
//	token ADD.json KIND OUT [PIN]  from slot add's answer, write OUT (0600):
//	                               KIND cmdline (a kernel command line with the
//	                               boot parameter), tokenfile (the token),
//	                               wrongsecret (the token with another secret),
//	                               secret (the secret alone), secrets (the
//	                               secret, for nosecret); PIN replaces the pins
func TestScripts(t *testing.T) {
	// node-join's scripts talk to a real join-service on loopback (a
	// node-side package may not link the master's code, so it runs as the
	// program it is).
	bin := fixture.BuildPrograms(t, "../join-service", "../cluster-init", "../callback-grant")
	cmds := fixture.Cmds()
	cmds["freeport"] = fixture.CmdFreePort
	cmds["waitsock"] = fixture.CmdWaitSock
	cmds["waitfile"] = fixture.CmdWaitFile
	cmds["token"] = cmdToken
	cmds["cutproxy"] = cmdCutProxy
	testscript.Run(t, testscript.Params{
		Dir:  "testdata",
		Cmds: cmds,
		Condition: func(cond string) (bool, error) {
			if cond != "root" {
				return false, fmt.Errorf("unknown condition %q", cond)
			}
			return os.Geteuid() == 0, nil
		},
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", bin+string(os.PathListSeparator)+env.Getenv("PATH"))
			return fixture.Setup(env)
		},
	})
}

func cmdToken(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 || len(args) > 4 {
		ts.Fatalf("usage: token ADD.json cmdline|tokenfile|wrongsecret|secret|secrets OUT [PIN]")
	}
	var add struct {
		BootParam string `json:"boot_param"`
	}
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[0])), &add))
	tok, err := joinapi.ParseToken(strings.TrimPrefix(add.BootParam, joinapi.BootParamKey+"="))
	ts.Check(err)
	if len(args) == 4 {
		tok.Pins = []string{args[3]}
	}
	var out string
	switch args[1] {
	case "cmdline":
		out = "BOOT_IMAGE=/vmlinuz ro " + tok.BootParam() + " console=ttyS0\n"
	case "tokenfile":
		out = tok.Text() + "\n"
	case "wrongsecret":
		tok.Secret = strings.Repeat("A", len(tok.Secret))
		out = tok.Text() + "\n"
	case "secret", "secrets":
		out = tok.Secret + "\n"
	default:
		ts.Fatalf("token: unknown kind %q", args[1])
	}
	p := ts.MkAbs(args[2])
	ts.Check(os.MkdirAll(filepath.Dir(p), 0o755))
	ts.Check(os.WriteFile(p, []byte(out), 0o600))
}

func cmdCutProxy(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: cutproxy VAR PORT")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	ts.Defer(func() { ln.Close() })
	ts.Setenv(args[0], strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	upstream := "127.0.0.1:" + args[1]
	go func() {
		for first := true; ; first = false {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go proxy(c, upstream, first)
		}
	}()
}

// proxy copies c to upstream and back; cut: after 4 KiB of the answer it
// closes both, the rest of the answer read and dropped.
func proxy(c net.Conn, upstream string, cut bool) {
	defer c.Close()
	u, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer u.Close()
	go func() { _, _ = io.Copy(u, c) }()
	if !cut {
		_, _ = io.Copy(c, u)
		return
	}
	_, _ = io.CopyN(c, u, 4096)
	c.Close()
	_, _ = io.Copy(io.Discard, u)
}
