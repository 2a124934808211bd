package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"go.yaml.in/yaml/v3"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/joinapi"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		prog: func() { os.Exit(cli.Main(prog, os.Args[1:], run)) },
	})
}

// TestScripts runs testdata/*.txtar with join-service and cluster-init on
// the PATH. Beside fixture.Cmds:
//
//	freeport VAR            a free loopback port in $VAR
//	waitsock PATH           wait until something listens on the unix socket
//	input ADD.json IN OUT   IN with TOKEN replaced by slot add's boot_param
//	fetch ADD.json          spend the slot: fetch its documents as a node would
//	secretin ADD.json FILE  FILE holds the slot's secret exactly once
//	perm MODE FILE          FILE's permission bits are MODE (octal)
//	runcurl USER-DATA DIR   the user-data's downloads and checksum, into DIR
func TestScripts(t *testing.T) {
	// The renderer asks a real join-service for the slot's state.
	bin := fixture.BuildPrograms(t, "../join-service", "../cluster-init")
	cmds := fixture.Cmds()
	cmds["freeport"] = fixture.CmdFreePort
	cmds["waitsock"] = fixture.CmdWaitSock
	cmds["input"] = cmdInput
	cmds["fetch"] = cmdFetch
	cmds["secretin"] = cmdSecretIn
	cmds["perm"] = cmdPerm
	cmds["runcurl"] = cmdRunCurl
	testscript.Run(t, testscript.Params{
		Dir:  "testdata",
		Cmds: cmds,
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", bin+string(os.PathListSeparator)+env.Getenv("PATH"))
			return nil
		},
	})
}

func token(ts *testscript.TestScript, file string) joinapi.Token {
	var add struct {
		BootParam string `json:"boot_param"`
	}
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(file)), &add))
	tok, err := joinapi.ParseToken(strings.TrimPrefix(add.BootParam, joinapi.BootParamKey+"="))
	ts.Check(err)
	return tok
}

func cmdInput(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: input ADD.json IN OUT")
	}
	tok := token(ts, args[0])
	out := strings.ReplaceAll(ts.ReadFile(args[1]), "TOKEN", tok.BootParam())
	ts.Check(os.WriteFile(ts.MkAbs(args[2]), []byte(out), 0o600))
}

func cmdFetch(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: fetch ADD.json")
	}
	tok := token(ts, args[0])
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: joinapi.ClientTLSConfig(tok.Pins)}, Timeout: 30 * time.Second}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "https://"+tok.Address()+"/v1/slots/"+tok.UUID+"?node_name=node9.c1.example.org", nil)
	ts.Check(err)
	req.Header.Set("Authorization", "Bearer "+tok.Secret)
	resp, err := cl.Do(req)
	ts.Check(err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		ts.Fatalf("fetch: %s", resp.Status)
	}
}

func cmdSecretIn(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: secretin ADD.json FILE")
	}
	tok := token(ts, args[0])
	if n := strings.Count(ts.ReadFile(args[1]), tok.Secret); n != 1 {
		ts.Fatalf("%s holds the secret %d times, want once", args[1], n)
	}
}

func cmdPerm(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: perm MODE FILE")
	}
	want, err := strconv.ParseUint(args[0], 8, 32)
	ts.Check(err)
	st, err := os.Stat(ts.MkAbs(args[1]))
	ts.Check(err)
	if got := st.Mode().Perm(); uint64(got) != want {
		ts.Fatalf("%s: mode %#o, want %#o", args[1], got, want)
	}
}

// cmdRunCurl runs the user-data's downloads and checksum as the node would,
// into DIR instead of /run/nodejoin-cloud: the curl commands as rendered
// (pinned public key; with wrongpin, another key's pin), then sha256sum
// --check of its SHA256SUMS file. Negated, some step must fail.
func cmdRunCurl(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 || len(args) > 3 || len(args) == 3 && args[2] != "wrongpin" {
		ts.Fatalf("usage: runcurl USER-DATA DIR [wrongpin]")
	}
	err := runCurl(ts, args[0], ts.MkAbs(args[1]), len(args) == 3)
	switch {
	case neg && err == nil:
		ts.Fatalf("runcurl: every step passed")
	case neg:
		fmt.Fprintln(ts.Stdout(), err)
	case err != nil:
		ts.Fatalf("runcurl: %v", err)
	}
}

func runCurl(ts *testscript.TestScript, userData, dir string, wrongPin bool) error {
	var ud struct {
		WriteFiles []struct{ Path, Content string } `yaml:"write_files"`
		Runcmd     []any                            `yaml:"runcmd"`
	}
	ts.Check(yaml.Unmarshal([]byte(ts.ReadFile(userData)), &ud))
	ts.Check(os.MkdirAll(dir, 0o700))
	sub := func(s string) string { return strings.ReplaceAll(s, "/run/nodejoin-cloud", dir) }
	n := 0
	var check []string
	for _, c := range ud.Runcmd {
		l, ok := c.([]any)
		if !ok {
			continue
		}
		var argv []string
		for _, a := range l {
			argv = append(argv, sub(fmt.Sprint(a)))
		}
		switch argv[0] {
		case "curl":
			n++
			for i, a := range argv {
				if wrongPin && strings.HasPrefix(a, "sha256//") {
					argv[i] = "sha256//" + strings.Repeat("A", 43) + "="
				}
			}
			if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
				return fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, out)
			}
		case "sha256sum":
			check = argv
		}
	}
	for _, f := range ud.WriteFiles {
		if strings.HasSuffix(f.Path, "/SHA256SUMS") {
			ts.Check(os.WriteFile(sub(f.Path), []byte(sub(f.Content)), 0o644))
		}
	}
	if n == 0 || check == nil {
		ts.Fatalf("%s: no curl or sha256sum in runcmd", userData)
	}
	if out, err := exec.Command(check[0], check[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(check, " "), err, out)
	}
	return nil
}
