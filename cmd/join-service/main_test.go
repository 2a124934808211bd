package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/crypto/ssh"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/master/clusterinit"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"join-service": func() { os.Exit(cli.Main("join-service", os.Args[1:], run)) },
	})
}

// TestScripts runs testdata/*.txtar. Beside testscript's own commands:
//
//	clusterinit DIR NAME      a cluster under DIR, as cluster-init makes it
//	freeport VAR              a free loopback port in $VAR
//	waitsock PATH             wait until the daemon answers on its admin socket
//	status N PROG ARGS...     run PROG as exec does; want exit status N exactly
//	node IP ADD.json fetch|fetch-wrongsecret|report|report-otherkey|poll CODE [STATUS]
//	                          act as the machine at IP with the token that
//	                          slot add printed in ADD.json; want HTTP CODE
func TestScripts(t *testing.T) {
	keys := map[string]string{}
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"clusterinit": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 2 {
					ts.Fatalf("usage: clusterinit DIR NAME")
				}
				p, err := clusterinit.PlanInit(clusterinit.InitOptions{Root: ts.MkAbs(args[0]), ClusterName: args[1],
					MasterNode: "master." + args[1], MasterIP: "192.0.2.1", NodeDaemonPort: freePort(ts)})
				ts.Check(err)
				ts.Check(p.Apply(context.Background(), slog.New(slog.DiscardHandler)))
			},
			"freeport": fixture.CmdFreePort,
			"waitsock": fixture.CmdWaitSock,
			"status":   fixture.Status,
			"node": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) < 4 {
					ts.Fatalf("usage: node IP ADD.json fetch|fetch-wrongsecret|report|report-otherkey|poll CODE [STATUS]")
				}
				nodeCall(ts, keys, args)
			},
		},
	})
}

func freePort(ts interface{ Fatalf(string, ...any) }) int {
	p, err := fixture.FreePort()
	if err != nil {
		ts.Fatalf("%v", err)
	}
	return p
}

func newRootKey(ts *testscript.TestScript) string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	ts.Check(err)
	sp, err := ssh.NewPublicKey(pub)
	ts.Check(err)
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
}

// nodeCall is one request of a booting machine, trusting the master by
// the token's pins only; the secret is read from slot add's output,
// never given on a command line. It prints the answer on stdout.
func nodeCall(ts *testscript.TestScript, keys map[string]string, args []string) {
	ip, addFile, what := args[0], args[1], args[2]
	want, err := strconv.Atoi(args[3])
	ts.Check(err)
	var add struct {
		BootParam string `json:"boot_param"`
		UUID      string `json:"uuid"`
	}
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(addFile)), &add))
	tok, err := joinapi.ParseToken(strings.TrimPrefix(add.BootParam, joinapi.BootParamKey+"="))
	ts.Check(err)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	cl := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: joinapi.ClientTLSConfig(tok.Pins),
		DialContext: d.DialContext, DisableKeepAlives: true}}
	if keys[ip] == "" {
		keys[ip] = newRootKey(ts)
	}
	method, path, body := http.MethodGet, "/v1/slots/"+add.UUID, []byte(nil)
	secret := tok.Secret
	switch what {
	case "fetch":
	case "fetch-wrongsecret":
		secret = strings.Repeat("A", len(tok.Secret))
	case "report", "report-otherkey":
		status := joinapi.StatusJoined
		if len(args) > 4 {
			status = args[4]
		}
		key := keys[ip]
		if what == "report-otherkey" {
			key = newRootKey(ts)
		}
		body, _ = json.Marshal(joinapi.StatusRequest{Status: status, RootKey: key})
		method, path = http.MethodPost, path+"/status"
	case "poll":
		path += "/config?after=1&wait=200ms"
	default:
		ts.Fatalf("node: %q is not fetch, fetch-wrongsecret, report, report-otherkey or poll", what)
	}
	req, err := http.NewRequest(method, "https://"+tok.Address()+path, bytes.NewReader(body))
	ts.Check(err)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := cl.Do(req)
	ts.Check(err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "%d %s\n", resp.StatusCode, b)
	if resp.StatusCode != want {
		ts.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
}
