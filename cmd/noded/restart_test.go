package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/lib/certs"
	"github.com/nodejoin/nodejoin/lib/nodeconf"
	"github.com/nodejoin/nodejoin/lib/noded"
)

// --restart starts a detached daemon and returns at once with its output
// closed (an ssh session running it must not hang), a second --restart
// replaces it, --stop ends it.
func TestRestart(t *testing.T) {
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "noded")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building: %v\n%s", err, out)
	}
	root := filepath.Join(tmp, "root")
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	os.MkdirAll(filepath.Join(root, "etc/nodejoin"), 0o755)
	conf, _ := json.Marshal(map[string]any{"node_daemon_port": port})
	os.WriteFile(filepath.Join(root, "etc/nodejoin/node.json"), conf, 0o644)
	serverPEM, err := certs.NewClusterCertificate("c1.example.org", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, "var/lib/ganeti"), 0o755)
	os.WriteFile(filepath.Join(root, "var/lib/ganeti/server.pem"), serverPEM, 0o600)
	cfg, _ := nodeconf.Load(root)
	t.Cleanup(func() { exec.Command(bin, "--stop", "--root", root).Run() })

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
		b, err := os.ReadFile(noded.PidFile(cfg))
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
	if log, _ := os.ReadFile(noded.LogFile(cfg)); !strings.Contains(string(log), "msg=serving") || !strings.Contains(string(log), "msg=stopped") {
		t.Errorf("log:\n%s", log)
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
