package main

// End to end against a real OpenSSH sshd on 127.0.0.1: cluster-init on a
// master root, node-add of a node root served by its own sshd, with the
// real node-side programs and noded. Runs as root; skips elsewhere.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/fixture"
)

func freePort(t *testing.T) int {
	t.Helper()
	p, err := fixture.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func runCmd(t *testing.T, env []string, name string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func mustRun(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, errs, err := runCmd(t, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, errs)
	}
	return out
}

func TestJoinWithRealSSHD(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: sshd must run as root to log in as root")
	}
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		t.Skip("needs /usr/sbin/sshd (openssh-server)")
	}
	if _, err := exec.LookPath("ssh-agent"); err != nil {
		t.Skip("needs ssh-agent (openssh-client)")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bin")
	build := exec.Command("go", "build", "-o", bin+"/", "./cmd/prepare-node-join", "./cmd/node-daemon-setup", "./cmd/noded", "./cmd/node-add", "./cmd/cluster-init")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building: %v\n%s", err, out)
	}
	master, node := filepath.Join(tmp, "master"), filepath.Join(tmp, "node")
	sshPort, nodedPort := freePort(t), freePort(t)

	// The node: its own host keys, sshd config, node.json.
	nodeSSH := filepath.Join(node, "etc/ssh")
	os.MkdirAll(nodeSSH, 0o755)
	os.MkdirAll(filepath.Join(node, "root"), 0o700)
	os.MkdirAll("/run/sshd", 0o755)
	for _, k := range []string{"ed25519", "rsa"} {
		mustRun(t, nil, "ssh-keygen", "-q", "-t", k, "-N", "", "-C", "", "-f", filepath.Join(nodeSSH, "ssh_host_"+k+"_key"))
	}
	fpOut := mustRun(t, nil, "ssh-keygen", "-lf", filepath.Join(nodeSSH, "ssh_host_ed25519_key.pub"))
	nodeFP := strings.Fields(fpOut)[1]

	// The operator's key, in an agent as an operator would have it.
	mustRun(t, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "operator", "-f", filepath.Join(tmp, "operator"))
	opPub, _ := os.ReadFile(filepath.Join(tmp, "operator.pub"))
	os.WriteFile(filepath.Join(tmp, "authorized_keys"), opPub, 0o600)
	agentSock := filepath.Join(tmp, "agent.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", agentSock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(agentSock); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	agentEnv := []string{"SSH_AUTH_SOCK=" + agentSock}
	mustRun(t, agentEnv, "ssh-add", "-q", filepath.Join(tmp, "operator"))

	sshdConfig := filepath.Join(tmp, "sshd_config")
	sshdLog := filepath.Join(tmp, "sshd.log")
	os.WriteFile(sshdConfig, []byte(fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s/ssh_host_ed25519_key
HostKey %s/ssh_host_rsa_key
AuthorizedKeysFile %s/authorized_keys
PidFile %s/sshd.pid
LogLevel VERBOSE
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
`, sshPort, nodeSSH, nodeSSH, tmp, tmp)), 0o644)
	sshd := exec.Command("/usr/sbin/sshd", "-D", "-f", sshdConfig, "-E", sshdLog)
	if err := sshd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sshd.Process.Kill(); sshd.Wait() })
	nodeConf, _ := json.Marshal(map[string]any{
		"sshd_check_command":          []string{"/usr/sbin/sshd", "-t", "-f", sshdConfig},
		"sshd_restart_command":        []string{"kill", "-HUP", fmt.Sprint(sshd.Process.Pid)},
		"node_daemon_restart_command": []string{bin + "/noded", "--restart", "--root", node},
	})
	// No node_daemon_port here: node-add's --node-daemon-port is carried to
	// the node by node-daemon-setup, which records it in node.json.
	os.MkdirAll(filepath.Join(node, "etc/nodejoin"), 0o755)
	os.WriteFile(filepath.Join(node, "etc/nodejoin/node.json"), nodeConf, 0o644)
	t.Cleanup(func() { exec.Command(bin+"/noded", "--stop", "--root", node).Run() })
	// Wait for sshd from its log, not by connecting: every TCP connection
	// to it is counted below.
	for i := 0; ; i++ {
		if b, _ := os.ReadFile(sshdLog); bytes.Contains(b, []byte("Server listening on")) {
			break
		} else if i == 250 {
			t.Fatalf("sshd does not listen:\n%s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	connections := func() int {
		b, _ := os.ReadFile(sshdLog)
		return strings.Count(string(b), "Connection from 127.0.0.1")
	}
	mustRun(t, nil, bin+"/cluster-init", "--root", master, "--cluster-name", "c1.test", "--master-node", "master.test", "--master-ip", "127.0.0.1")
	hmac, _ := os.ReadFile(filepath.Join(master, "var/lib/ganeti/hmac.key"))
	secret := strings.TrimSpace(string(hmac))

	// Watch every process's command line for the secret while joining.
	var leaked atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
			for _, p := range paths {
				if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(secret)) {
					leaked.Store(p + ": " + string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()

	args := []string{"--root", master, "--ssh-port", fmt.Sprint(sshPort),
		"--prepare-program", bin + "/prepare-node-join", "--setup-program", bin + "/node-daemon-setup",
		"--remote-root", node, "--node-daemon-port", fmt.Sprint(nodedPort), "--output", "json"}
	start := time.Now()
	out, errs, err := runCmd(t, agentEnv, bin+"/node-add", append(append([]string{}, args...), "--host-key-fingerprint", nodeFP, "127.0.0.1")...)
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()
	if err != nil {
		log, _ := os.ReadFile(sshdLog)
		t.Fatalf("node-add: %v\nstdout:\n%s\nstderr:\n%s\nsshd log:\n%s", err, out, errs, log)
	}
	if l := leaked.Load(); l != nil {
		t.Errorf("the hmac key was on a command line: %s", l)
	}
	if strings.Contains(out+errs, secret) {
		t.Error("the hmac key is in node-add's output")
	}
	type result struct {
		Node            string             `json:"node"`
		OK              bool               `json:"ok"`
		Step            string             `json:"step"`
		Message         string             `json:"message"`
		Changed         bool               `json:"changed"`
		Recorded        bool               `json:"recorded"`
		HostKey         string             `json:"host_key"`
		VerifiedHostKey string             `json:"verified_host_key"`
		Connections     int                `json:"ssh_connections"`
		StepSeconds     map[string]float64 `json:"step_seconds"`
	}
	var res result
	if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &res); err != nil || !res.OK || !res.Changed || !res.Recorded {
		t.Fatalf("result %q: %v", out, err)
	}
	// The report names the key the node presents now (the cluster's) and
	// the one the connection was verified with.
	clusterFP := strings.Fields(mustRun(t, nil, "ssh-keygen", "-lf", filepath.Join(master, "etc/ssh/ssh_host_ed25519_key.pub")))[1]
	if res.HostKey != clusterFP || res.VerifiedHostKey != nodeFP {
		t.Errorf("host_key %s, verified_host_key %s; want %s, %s", res.HostKey, res.VerifiedHostKey, clusterFP, nodeFP)
	}
	// --node-daemon-port reached the node: node.json records it, other
	// keys kept, and noded answered there.
	var nc map[string]any
	b, _ := os.ReadFile(filepath.Join(node, "etc/nodejoin/node.json"))
	if err := json.Unmarshal(b, &nc); err != nil || nc["node_daemon_port"] != float64(nodedPort) || nc["sshd_check_command"] == nil {
		t.Errorf("node.json after the join: %s (%v)", b, err)
	}
	if n := connections(); n != 1 {
		b, _ := os.ReadFile(sshdLog)
		t.Errorf("sshd saw %d connections for one join, want 1:\n%s", n, b)
	}
	t.Logf("one join over loopback: %v (steps %v), %d ssh connection(s)", elapsed.Round(time.Millisecond), res.StepSeconds, connections())

	// The node now has the cluster's state, and the master records the node.
	for _, f := range []string{"var/lib/ganeti/server.pem", "var/lib/ganeti/hmac.key", "var/lib/ganeti/ssconf_cluster_name"} {
		want, _ := os.ReadFile(filepath.Join(master, f))
		if got, err := os.ReadFile(filepath.Join(node, f)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("node's %s differs from the master's (%v)", f, err)
		}
	}
	nl, _ := os.ReadFile(filepath.Join(master, "var/lib/ganeti/ssconf_node_list"))
	if string(nl) != "127.0.0.1\nmaster.test\n" {
		t.Errorf("master's node_list = %q", nl)
	}
	pk, _ := os.ReadFile(filepath.Join(master, "var/lib/ganeti/ganeti_pub_keys"))
	if !strings.Contains(string(pk), "\n127.0.0.1 ssh-ed25519 ") {
		t.Errorf("ganeti_pub_keys lacks the node's key:\n%s", pk)
	}

	// The same command again, pin and all: the node is recorded and now
	// presents the cluster key, which the master recognises. Nothing
	// changes; one connection. Then without the pin, through the cluster
	// known_hosts.
	for i, extra := range [][]string{{"--host-key-fingerprint", nodeFP}, nil} {
		out, errs, err = runCmd(t, agentEnv, bin+"/node-add", append(append(append([]string{}, args...), extra...), "127.0.0.1")...)
		if err != nil {
			t.Fatalf("node-add again %v: %v\n%s%s", extra, err, out, errs)
		}
		res = result{}
		if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &res); err != nil || !res.OK || res.Changed || res.Recorded || res.HostKey != clusterFP {
			t.Errorf("node-add again %v: %s", extra, out)
		}
		if n := connections(); n != 2+i {
			t.Errorf("sshd saw %d connections after %d joins, want %d", n, 2+i, 2+i)
		}
	}

	// The cluster key under a name the master has not recorded proves
	// nothing (every node holds it): refused before login, pin or not.
	out, _, err = runCmd(t, agentEnv, bin+"/node-add", append(append([]string{}, args...), "--host-key-fingerprint", nodeFP, "localhost")...)
	res = result{}
	_ = json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &res)
	if err == nil || res.Step != "host-key" || !strings.Contains(res.Message, "localhost offers the cluster's host key "+clusterFP+" but is not a recorded node") {
		t.Errorf("unrecorded name: err %v, out %s", err, out)
	}
	if b, _ := os.ReadFile(sshdLog); strings.Count(string(b), "Accepted publickey") != 3 {
		t.Errorf("a refused host key led to a login:\n%s", b)
	}
}
