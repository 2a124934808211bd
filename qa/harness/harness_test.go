package harness_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/qa/harness"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// run runs argv on h and fails the test unless it exits 0.
func run(t *testing.T, h *harness.Host, stdin []byte, argv ...string) string {
	t.Helper()
	out, stderr, code, err := h.Run(ctx(t), stdin, argv...)
	if err != nil || code != 0 {
		t.Fatalf("%s: %q: exit %d, %v\nstderr: %s", h.Name, argv, code, err, stderr)
	}
	return string(out)
}

// writeKnownHosts puts node's current host keys into a known_hosts file in
// master's /root/.ssh and returns its path inside master.
func writeKnownHosts(t *testing.T, lab *harness.Lab, node *harness.Host, name string) string {
	t.Helper()
	kh, err := node.KnownHosts()
	if err != nil {
		t.Fatal(err)
	}
	p := "/root/.ssh/" + name
	if err := os.WriteFile(lab.Master.Path(p), kh, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func sshArgs(knownHosts string, node *harness.Host, cmd ...string) []string {
	return append([]string{"ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + knownHosts, "-o", "ConnectTimeout=5",
		"root@" + node.IP().String()}, cmd...)
}

func TestLabSSHFromMasterToNode(t *testing.T) {
	harness.Require(t)
	t.Parallel() // labs never collide; see leftovers_test.go for the exception
	start := time.Now()
	lab := harness.New(t, harness.Options{Nodes: 2})
	t.Logf("lab start: %v", time.Since(start))
	node1 := lab.Nodes[0]

	names := map[string]string{}
	for _, h := range lab.Hosts() {
		got := strings.TrimSpace(run(t, h, nil, "hostname"))
		if got != h.Name {
			t.Errorf("hostname on %s = %q", h.Name, got)
		}
		if other, dup := names[got]; dup {
			t.Errorf("%s and %s share hostname %q", other, h.Name, got)
		}
		names[got] = h.Name
	}

	kh := writeKnownHosts(t, lab, node1, "known_hosts_node1")
	before := node1.CountSSHConnections()
	out := run(t, lab.Master, nil, sshArgs(kh, node1, "hostname; cat /proc/1/cmdline | tr '\\0' ' '")...)
	if !strings.HasPrefix(out, "node1\n") {
		t.Errorf("ssh master -> node1 printed %q, want node1's hostname first", out)
	}
	if got := node1.CountSSHConnections() - before; got != 1 {
		t.Errorf("node1's sshd accepted %d connections, want 1; log:\n%s", got, node1.SSHDLog())
	}
	if n := lab.Nodes[1].CountSSHConnections(); n != 0 {
		t.Errorf("node2's sshd accepted %d connections, want 0", n)
	}

	// Another node's known_hosts must not do for node1.
	kh2 := writeKnownHosts(t, lab, lab.Nodes[1], "known_hosts_node2")
	_, stderr, code, err := lab.Master.Run(ctx(t), nil, sshArgs(kh2, node1, "true")...)
	if err != nil || code != 255 || !bytes.Contains(stderr, []byte("Host key verification failed")) {
		t.Errorf("ssh with node2's keys for node1: exit %d, %v, stderr %q; want 255 and a host key failure", code, err, stderr)
	}

	// Ganeti is hidden without Options.Ganeti: the node-side programs see
	// a node without it, whatever the machine has installed.
	if _, err := os.Stat("/usr/lib/ganeti/daemon-util"); err == nil {
		if out := run(t, node1, nil, "sh", "-c", "ls -A /usr/lib/ganeti; echo end"); out != "end\n" {
			t.Errorf("/usr/lib/ganeti on node1 holds %q, want it empty", out)
		}
	}

	// The bind mounts: a file written on the host lands in the lab dir.
	run(t, node1, []byte("x"), "sh", "-c", "cat > /var/lib/ganeti/probe && cat > /etc/nodejoin/probe </dev/null")
	for _, p := range []string{"/var/lib/ganeti/probe", "/etc/nodejoin/probe"} {
		if _, err := os.Stat(node1.Path(p)); err != nil {
			t.Errorf("%s written on node1: %v", p, err)
		}
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s appeared on the real filesystem", p)
		}
	}
	checkRootNamespaceClean(t, lab)
}

func TestRestartSSHDPicksUpNewHostKeys(t *testing.T) {
	harness.Require(t)
	t.Parallel() // labs never collide; see leftovers_test.go for the exception
	lab := harness.New(t, harness.Options{Nodes: 1})
	node := lab.Nodes[0]
	oldKH := writeKnownHosts(t, lab, node, "known_hosts_old")

	// Replace the host keys the way prepare-node-join would: new files over
	// the default paths, then the node's restart command.
	tmp := t.TempDir()
	for _, typ := range []string{"ed25519", "rsa"} {
		k := filepath.Join(tmp, "ssh_host_"+typ+"_key")
		if out, err := exec.Command("ssh-keygen", "-q", "-N", "", "-t", typ, "-C", "new", "-f", k).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
		for _, suffix := range []string{"", ".pub"} {
			if err := os.Rename(k+suffix, node.Path("/etc/ssh/ssh_host_"+typ+"_key"+suffix)); err != nil {
				t.Fatal(err)
			}
		}
	}
	run(t, node, nil, "nj-check-sshd")
	run(t, node, nil, "nj-restart-sshd")
	newKH := writeKnownHosts(t, lab, node, "known_hosts_new")

	scan := run(t, lab.Master, nil, "ssh-keyscan", "-T", "5", "-t", "ed25519,rsa", node.IP().String())
	want, _ := os.ReadFile(lab.Master.Path(newKH))
	for _, line := range strings.Split(strings.TrimSpace(string(want)), "\n") {
		if !strings.Contains(scan, line) {
			t.Errorf("ssh-keyscan after restart lacks new key %q; got:\n%s", line, scan)
		}
	}
	run(t, lab.Master, nil, sshArgs(newKH, node, "true")...)
	_, stderr, code, err := lab.Master.Run(ctx(t), nil, sshArgs(oldKH, node, "true")...)
	if err != nil || code != 255 {
		t.Errorf("ssh with the old host keys: exit %d, %v, stderr %q; want 255", code, err, stderr)
	}
	if !strings.Contains(node.SSHDLog(), "Received SIGHUP; restarting.") {
		t.Errorf("sshd log shows no SIGHUP restart:\n%s", node.SSHDLog())
	}
}

func TestStopAndStartSSHD(t *testing.T) {
	harness.Require(t)
	t.Parallel() // labs never collide; see leftovers_test.go for the exception
	lab := harness.New(t, harness.Options{Nodes: 1})
	node := lab.Nodes[0]
	kh := writeKnownHosts(t, lab, node, "known_hosts")
	if err := node.StopSSHD(); err != nil {
		t.Fatal(err)
	}
	_, _, code, err := lab.Master.Run(ctx(t), nil, sshArgs(kh, node, "true")...)
	if err != nil || code != 255 {
		t.Errorf("ssh to a stopped sshd: exit %d, %v; want 255", code, err)
	}
	if err := node.StartSSHD(); err != nil {
		t.Fatal(err)
	}
	run(t, lab.Master, nil, sshArgs(kh, node, "true")...)
	// nj-restart-sshd starts sshd too when none runs.
	if err := node.StopSSHD(); err != nil {
		t.Fatal(err)
	}
	run(t, node, nil, "nj-restart-sshd")
	run(t, lab.Master, nil, sshArgs(kh, node, "true")...)
	if got := node.CountSSHConnections(); got != 2 {
		t.Errorf("node1 counted %d connections, want 2", got)
	}
}

func TestInstallBinaries(t *testing.T) {
	harness.Require(t)
	t.Parallel() // labs never collide; see leftovers_test.go for the exception
	lab := harness.New(t, harness.Options{Nodes: 1})
	node := lab.Nodes[0]
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "nj-hello"), []byte("#!/bin/sh\necho hello from $(hostname)\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := node.InstallBinaries(src); err != nil {
		t.Fatal(err)
	}
	if got := run(t, node, nil, "nj-hello"); got != "hello from node1\n" {
		t.Errorf("Run nj-hello = %q", got)
	}
	// SSH sessions get root's PATH from sshd, which starts with the bin dir.
	kh := writeKnownHosts(t, lab, node, "known_hosts")
	if got := run(t, lab.Master, nil, sshArgs(kh, node, "nj-hello")...); got != "hello from node1\n" {
		t.Errorf("ssh nj-hello = %q", got)
	}
}

func TestCloseLeavesNothingBehind(t *testing.T) {
	harness.Require(t)
	t.Parallel() // labs never collide; see leftovers_test.go for the exception
	lab := harness.New(t, harness.Options{Nodes: 2})
	var pids []int
	for _, h := range lab.Hosts() {
		pids = append(pids, h.InitPID())
	}
	nss := lab.Namespaces()
	if len(nss) != 4 {
		t.Fatalf("lab namespaces = %q, want switch + 3 hosts", nss)
	}
	start := time.Now()
	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("lab close: %v", time.Since(start))
	if err := lab.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	checkGone(t, lab.Prefix, lab.Dir, pids)
}

// checkGone checks that the root namespace holds no namespace, mount,
// process or directory of the lab.
func checkGone(t *testing.T, prefix, dir string, pids []int) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), prefix) {
		t.Errorf("ip netns list still shows the lab:\n%s", out)
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		if strings.Contains(line, dir) || strings.Contains(line, "/run/netns/"+prefix) {
			t.Errorf("mount left: %s", line)
		}
	}
	// A zombie is allowed: when the test process was killed, pid 1 is
	// reaped by the machine's init, in its own time.
	for _, pid := range pids {
		if processExists(pid) {
			t.Errorf("host pid 1 %d still runs", pid)
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		cl, err := os.ReadFile(p)
		if err == nil && bytes.Contains(cl, []byte(dir)) {
			t.Errorf("process %s still runs: %q", p, bytes.ReplaceAll(cl, []byte{0}, []byte{' '}))
		}
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("lab dir %s still exists", dir)
	}
}

// checkRootNamespaceClean checks that a running lab put no interface,
// address or route into the root network namespace.
func checkRootNamespaceClean(t *testing.T, lab *harness.Lab) {
	t.Helper()
	net := strings.TrimSuffix(lab.Subnet.Masked().String(), ".0/24")
	for _, args := range [][]string{{"-o", "link"}, {"-o", "addr"}, {"route"}} {
		out, err := exec.Command("ip", args...).Output()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), lab.Prefix) || strings.Contains(string(out), net+".") {
			t.Errorf("root namespace `ip %s` shows the lab:\n%s", strings.Join(args, " "), out)
		}
	}
}

func TestLabShareRSAHostKey(t *testing.T) {
	harness.Require(t)
	t.Parallel()
	lab := harness.New(t, harness.Options{Nodes: 2, ShareRSAHostKey: true})
	read := func(h *harness.Host, p string) string {
		b, err := os.ReadFile(h.Path(p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	n1, n2 := lab.Nodes[0], lab.Nodes[1]
	// Hosts know each other by name (/etc/hosts).
	if got := strings.Fields(run(t, n1, nil, "getent", "hosts", "node2")); len(got) < 2 || got[0] != n2.IP().String() {
		t.Errorf("getent hosts node2 on node1 = %q, want %s", got, n2.IP())
	}
	if read(n1, "/etc/ssh/ssh_host_rsa_key.pub") != read(n2, "/etc/ssh/ssh_host_rsa_key.pub") {
		t.Error("node1 and node2 have different RSA host keys, want the shared one")
	}
	if read(n1, "/etc/ssh/ssh_host_ed25519_key.pub") == read(n2, "/etc/ssh/ssh_host_ed25519_key.pub") {
		t.Error("node1 and node2 share an ed25519 host key, want one each")
	}
	// The shared key is a working host key: ssh with only it in known_hosts.
	kh := lab.Master.Path("/root/.ssh/known_hosts_rsa")
	line := n1.IP().String() + " " + strings.Join(strings.Fields(read(n1, "/etc/ssh/ssh_host_rsa_key.pub"))[:2], " ") + "\n"
	if err := os.WriteFile(kh, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	out := run(t, lab.Master, nil, append(sshArgs("/root/.ssh/known_hosts_rsa", n1, "hostname")[:1],
		append([]string{"-o", "HostKeyAlgorithms=rsa-sha2-512,rsa-sha2-256"}, sshArgs("/root/.ssh/known_hosts_rsa", n1, "hostname")[1:]...)...)...)
	if strings.TrimSpace(out) != "node1" {
		t.Errorf("ssh to node1 with the shared RSA key printed %q", out)
	}
}

// A lab host can write only its own directories: a write elsewhere on the
// machine fails in the host, and one from outside the hosts shows in a
// snapshot of OutsideDirs.
func TestWriteOutsideIsCaught(t *testing.T) {
	harness.Require(t)
	t.Parallel()
	lab := harness.New(t, harness.Options{Nodes: 0})
	h := lab.Master
	for _, p := range []string{"/var/cache/njqa-probe", "/usr/share/njqa-probe", "/etc/njqa-probe", "/var/lib/njqa-probe"} {
		_, stderr, code, err := h.Run(ctx(t), nil, "sh", "-c", "echo x > "+p)
		if err != nil || code == 0 || !strings.Contains(string(stderr), "Read-only file system") {
			t.Errorf("writing %s in a host: exit %d, %v, stderr %q; want a read-only file system", p, code, err, stderr)
		}
		if _, err := os.Stat(p); err == nil {
			os.Remove(p)
			t.Errorf("%s written in a host appeared on the machine", p)
		}
	}
	for _, p := range append(harness.WritableDirs(), "/tmp", "/var/tmp", "/run", "/var/run", "/dev/shm") {
		probe := p + "/njqa-probe"
		run(t, h, nil, "sh", "-c", "echo x > "+probe)
		if _, err := os.Stat(probe); err == nil {
			os.Remove(probe)
			t.Errorf("%s written in a host appeared on the machine", probe)
		}
	}

	before, err := harness.TakeSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	probe := "/var/log/njqa-probe-" + lab.Prefix
	if err := os.WriteFile(probe, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(probe)
	err = harness.CheckNothingOutside(before)
	if err == nil || !strings.Contains(err.Error(), "\n+ "+probe+" ") {
		t.Errorf("CheckNothingOutside after writing %s = %v, want it named", probe, err)
	}
}
