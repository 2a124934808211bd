package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/node/nodedserver"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/noded"
)

// --restart starts a detached daemon and returns at once with its output
// closed (an ssh session running it must not hang), a second --restart
// replaces it, --stop ends it.
func TestRestart(t *testing.T) {
	bin, root, port, serverPEM, cfg := daemonRoot(t)
	restart := func() int {
		t.Helper()
		cmd := exec.Command(bin, "--restart", "--root", root)
		done := make(chan error, 1)
		var out []byte
		go func() { var err error; out, err = cmd.CombinedOutput(); done <- err }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("noded --restart: %v\n%s", err, out)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("noded --restart did not return: its output is still open")
		}
		b, err := os.ReadFile(nodedserver.PidFile(cfg))
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return pid
	}
	pid1 := restart()
	server, _ := certs.ParseKeyPair(serverPEM)
	clientPEM, _ := certs.NewClientCertificate(server, "master", time.Hour)
	client, _ := certs.ParseKeyPair(clientPEM)
	v, err := noded.NewClient(server.Cert, client).Version(context.Background(), "127.0.0.1", port)
	if err != nil || v.Program != "noded" {
		t.Fatalf("version: %+v %v", v, err)
	}
	pid2 := restart()
	if pid2 == pid1 || alive(pid1) {
		t.Errorf("the first daemon (pid %d) still runs after a restart (new pid %d)", pid1, pid2)
	}
	if out, err := exec.Command(bin, "--stop", "--root", root).CombinedOutput(); err != nil {
		t.Fatalf("--stop: %v %s", err, out)
	}
	if alive(pid2) {
		t.Errorf("pid %d still runs after --stop", pid2)
	}
	log, _ := os.ReadFile(nodedserver.LogFile(cfg))
	if !strings.Contains(string(log), "msg=serving") || !strings.Contains(string(log), "msg=stopped") {
		t.Errorf("log:\n%s", log)
	}
	// Every line has its time; the request has a line of its own, naming
	// the client by its certificate's fingerprint.
	stamp := `time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d) `
	for _, l := range strings.Split(strings.TrimSpace(string(log)), "\n") {
		if !regexp.MustCompile("^" + stamp).MatchString(l) {
			t.Errorf("a log line without an RFC 3339 time: %q", l)
		}
	}
	request := stamp + `level=INFO msg=request prog=noded method=GET path=/version client=` + certs.Fingerprint(client.Cert) +
		` remote=127\.0\.0\.1:\d+ status=200 duration=\S+\n`
	if !regexp.MustCompile(request).Match(log) {
		t.Errorf("no request line for GET /version in the log:\n%s", log)
	}
}

// --restart learns that the new daemon listens from the daemon itself
// (--ready-fd), not by connecting to it: the daemon sees no connection
// (a probe is logged at debug level as one closed before its handshake),
// and still listens once --restart has returned.
func TestRestartWithoutProbe(t *testing.T) {
	bin, root, port, serverPEM, cfg := daemonRoot(t)
	if out, err := exec.Command(bin, "--restart", "--debug", "--root", root).CombinedOutput(); err != nil {
		t.Fatalf("noded --restart: %v\n%s", err, out)
	}
	server, _ := certs.ParseKeyPair(serverPEM)
	clientPEM, _ := certs.NewClientCertificate(server, "master", time.Hour)
	client, _ := certs.ParseKeyPair(clientPEM)
	if _, err := noded.NewClient(server.Cert, client).Version(context.Background(), "127.0.0.1", port); err != nil {
		t.Fatalf("version right after --restart: %v", err)
	}
	if out, err := exec.Command(bin, "--stop", "--root", root).CombinedOutput(); err != nil {
		t.Fatalf("--stop: %v %s", err, out)
	}
	log, _ := os.ReadFile(nodedserver.LogFile(cfg))
	if !strings.Contains(string(log), "msg=request") {
		t.Fatalf("no request in the log:\n%s", log)
	}
	if strings.Contains(string(log), "closed before the TLS handshake") {
		t.Errorf("--restart connected to the new daemon:\n%s", log)
	}
}

// daemonRoot builds noded and makes a node root for it with a cluster
// certificate and a free port in node.json; a noded left running is
// stopped when the test ends.
func daemonRoot(t *testing.T) (bin, root string, port int, serverPEM []byte, cfg *nodeconf.Config) {
	t.Helper()
	tmp := t.TempDir()
	bin = filepath.Join(tmp, "noded")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building: %v\n%s", err, out)
	}
	root = filepath.Join(tmp, "root")
	port = freePort(t)
	os.MkdirAll(filepath.Join(root, "etc/nodejoin"), 0o755)
	conf, _ := json.Marshal(map[string]any{"node_daemon_port": port})
	os.WriteFile(filepath.Join(root, "etc/nodejoin/node.json"), conf, 0o644)
	serverPEM, err := certs.NewClusterCertificate("c1.example.org", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, "var/lib/ganeti"), 0o755)
	os.WriteFile(filepath.Join(root, "var/lib/ganeti/server.pem"), serverPEM, 0o600)
	cfg, _ = nodeconf.Load(root)
	t.Cleanup(func() { exec.Command(bin, "--stop", "--root", root).Run() })
	return bin, root, port, serverPEM, cfg
}

func freePort(t *testing.T) int {
	t.Helper()
	p, err := fixture.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A second noded of the same root, even on another port, refuses to start
// (exit 1, naming the running one) and leaves the first one's pid file
// alone, so that --stop still stops the first.
func TestSecondInstanceRefused(t *testing.T) {
	bin, root, _, _, cfg := daemonRoot(t)
	if out, err := exec.Command(bin, "--restart", "--root", root).CombinedOutput(); err != nil {
		t.Fatalf("noded --restart: %v\n%s", err, out)
	}
	pidBefore, err := os.ReadFile(nodedserver.PidFile(cfg))
	if err != nil {
		t.Fatal(err)
	}
	pid1, _ := strconv.Atoi(strings.TrimSpace(string(pidBefore)))

	second := exec.Command(bin, "--root", root, "--bind", "127.0.0.1", "--port", strconv.Itoa(freePort(t)))
	var stderr strings.Builder
	second.Stderr = &stderr
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- second.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("the second noded: %v, want exit status 1", err)
		}
	case <-time.After(10 * time.Second):
		_ = second.Process.Signal(syscall.SIGTERM) // it started: end it as an operator would
		<-done
		t.Error("a second noded of the same root started")
	}
	want := fmt.Sprintf("noded: error: noded already runs as PID %d\n"+
		"noded: hint: noded --stop --root %s stops it; noded --restart replaces it\n", pid1, root)
	if stderr.String() != want {
		t.Errorf("the second noded's stderr:\n%s\nwant:\n%s", stderr.String(), want)
	}
	if after, err := os.ReadFile(nodedserver.PidFile(cfg)); err != nil || string(after) != string(pidBefore) {
		t.Errorf("the pid file after the second noded: %q, %v; want %q", after, err, pidBefore)
	}
	if out, err := exec.Command(bin, "--stop", "--root", root).CombinedOutput(); err != nil {
		t.Fatalf("--stop: %v %s", err, out)
	}
	if alive(pid1) {
		t.Errorf("the first noded (pid %d) still runs after --stop", pid1)
	}
	if _, err := os.Stat(nodedserver.PidFile(cfg)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the pid file after --stop: %v", err)
	}
}

// alive says whether pid runs (a zombie waiting for a reaper does not).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
