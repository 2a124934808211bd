package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nodejoin/nodejoin/qa/clusterlab"
	"github.com/nodejoin/nodejoin/qa/harness"
)

// lab runs the built lab program with args and stdin, and returns its
// output and exit status.
func lab(t *testing.T, bin, stdin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("lab %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), 0
}

// lab up keeps a lab after it exits; run and shell reach its hosts; a
// second up is refused; down leaves no process, namespace, lab directory
// or state behind.
func TestLabUpRunDown(t *testing.T) {
	harness.Require(t)
	progs, err := clusterlab.Build()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "lab")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// The keeping process uses the programs built here (clusterlab.BinEnv).
	t.Setenv(clusterlab.BinEnv, progs)
	dir := filepath.Join(tmp, "state")
	s := "--state=" + dir
	t.Cleanup(func() { lab(t, bin, "", "down", s) })

	out, code := lab(t, bin, "", "up", "--nodes", "2", "--bare", "1", s)
	if code != 0 {
		t.Fatalf("lab up: exit %d\n%s", code, out)
	}
	st, err := readState(dir)
	if err != nil {
		t.Fatalf("after lab up: %v\n%s", err, out)
	}
	for _, want := range []string{"master", "node1", "node2", "SHA256:", "node-add --install --host-key-fingerprint node1=SHA256:"} {
		if !strings.Contains(out, want) {
			t.Errorf("lab up printed no %q:\n%s", want, out)
		}
	}
	if out, code := lab(t, bin, "", "run", s, "node1", "--", "hostname"); code != 0 || out != "node1\n" {
		t.Errorf("lab run node1 -- hostname: exit %d, %q", code, out)
	}
	if out, code := lab(t, bin, "", "run", s, "node1", "--", "sh", "-c", "command -v prepare-node-join; exit 7"); code != 7 || out != "/usr/local/sbin/prepare-node-join\n" {
		t.Errorf("lab run node1 -- sh -c ...: exit %d (want 7), %q", code, out)
	}
	// --bare 1: node2 has none of the node-side programs, master all of its own.
	if out, code := lab(t, bin, "", "run", s, "node2", "--", "sh", "-c", "command -v prepare-node-join; command -v noded; true"); code != 0 || out != "" {
		t.Errorf("lab run node2 -- command -v: exit %d, %q; want nothing on the bare node", code, out)
	}
	if out, code := lab(t, bin, "", "run", s, "master", "--", "sh", "-c", "command -v node-add; command -v noded"); code != 0 || out != "/usr/local/sbin/node-add\n/usr/local/sbin/noded\n" {
		t.Errorf("lab run master -- command -v: exit %d, %q", code, out)
	}
	// master's root key is trusted on the nodes: ssh works from master.
	if out, code := lab(t, bin, "", "run", s, "master", "--", "ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "node1", "hostname"); code != 0 || !strings.HasSuffix(out, "node1\n") {
		t.Errorf("lab run master -- ssh node1 hostname: exit %d, %q", code, out)
	}
	if out, code := lab(t, bin, "hostname\n", "shell", s, "master"); code != 0 || !strings.Contains(out, "master\n") {
		t.Errorf("lab shell master < hostname: exit %d, %q", code, out)
	}
	if out, code := lab(t, bin, "", "run", s, "node9", "--", "true"); code != 1 || !strings.Contains(out, "node9: no such host") {
		t.Errorf("lab run node9: exit %d, %q", code, out)
	}
	if out, code := lab(t, bin, "", "up", s); code != 1 || !strings.Contains(out, "a lab is up already") {
		t.Errorf("a second lab up: exit %d, %q", code, out)
	}

	if out, code := lab(t, bin, "", "down", s); code != 0 {
		t.Fatalf("lab down: exit %d\n%s", code, out)
	}
	if keeping(st.PID) {
		t.Errorf("the lab's process %d runs after lab down", st.PID)
	}
	for _, h := range st.Hosts {
		if _, err := os.Stat("/proc/" + strconv.Itoa(h.InitPID)); err == nil {
			t.Errorf("%s's pid 1 (%d) runs after lab down", h.Name, h.InitPID)
		}
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), st.Prefix) {
		t.Errorf("namespaces of lab %s are left:\n%s", st.Prefix, out)
	}
	if _, err := os.Stat(filepath.Join("/tmp/njqa", st.Prefix)); err == nil {
		t.Errorf("the lab's directory /tmp/njqa/%s is left", st.Prefix)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("the state directory %s is left", dir)
	}
	if out, code := lab(t, bin, "", "run", s, "node1", "--", "true"); code != 1 || !strings.Contains(out, "no lab is up") {
		t.Errorf("lab run after lab down: exit %d, %q", code, out)
	}
}
