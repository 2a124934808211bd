package scenarios

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/qa/clusterlab"
)

// waitListening waits until master's sshd listens on port (a tunnel is
// up) or does not (it is down), without a connection to node1's sshd.
func (l *cbLab) waitListening(t *testing.T, port int, up bool, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for l.listening(t, port) != up {
		if time.Now().After(deadline) {
			t.Fatalf("master port %d: listening is not %v within %v", port, up, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stopSupervisor stops callback-setup --run on node1 and waits until the
// tunnel's port is free.
func (l *cbLab) stopSupervisor(t *testing.T, sup *supervisor, port int) {
	t.Helper()
	l.inNode(t, `kill -TERM $(cat /run/callback-supervisor.pid)`)
	select {
	case <-sup.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("callback-setup --run still runs 10 s after SIGTERM")
	}
	l.waitListening(t, port, false, 10*time.Second)
}

// inMaster runs a shell script in master.
func (l *cbLab) inMaster(t *testing.T, script string) {
	t.Helper()
	if r := clusterlab.Run(l.ctx, l.Master, nil, "sh", "-c", script); !r.OK() {
		t.Fatalf("master: %s: %s", script, r)
	}
}

// joinLine is the first line of node-add --output json.
type joinLine struct {
	OK              bool    `json:"ok"`
	Changed         bool    `json:"changed"`
	Tunnel          string  `json:"callback_tunnel"`
	VerifiedHostKey string  `json:"verified_host_key"`
	Connections     int     `json:"ssh_connections"`
	NodedVersion    string  `json:"noded_version"`
	PrimaryIP       string  `json:"primary_ip"`
	Seconds         float64 `json:"seconds"`
}

func joinResult(t *testing.T, stdout string) joinLine {
	t.Helper()
	var res joinLine
	if err := json.Unmarshal([]byte(strings.SplitN(stdout, "\n", 2)[0]), &res); err != nil {
		t.Fatalf("node-add's first line: %v\n%s", err, stdout)
	}
	return res
}

// TestCallbackNodeAdd: node1 drops every connection it did not open, and
// is joined by node-add through its tunnel, found in the master's
// callback record: both programs over one SSH connection, node1's own
// host key checked under its name, noded asked over that connection. A
// tunnel whose far end does not answer, a dead tunnel and a listener that
// is not node1 are each told apart, before any login. After the master's sshd goes down and comes back with every
// session lost (as in a reboot), the tunnel comes back by itself and
// node-add works through it again.
func TestCallbackNodeAdd(t *testing.T) {
	l := newCallbackLab(t)
	if r := l.Init(l.ctx); !r.OK() {
		t.Fatalf("cluster-init: %s", r)
	}
	pub := l.setup(t, 0)
	port := l.grant(t, l.node.Name, pub)
	l.setup(t, port)
	sup := l.startSupervisor(t)
	l.waitListening(t, port, true, 20*time.Second)
	// The operator checked node1's host key: master's known_hosts lists
	// it under node1's name and address, never under localhost:PORT.
	if err := l.TrustHostKeys(l.node); err != nil {
		t.Fatal(err)
	}
	own := fingerprint(t, l.ctx, l.node, "/etc/ssh/ssh_host_ed25519_key.pub")
	tunnel := "localhost:" + strconv.Itoa(port)

	before := l.node.CountSSHConnections()
	r := l.NodeAdd(l.ctx, "--output", "json", l.node.Name)
	if !r.OK() {
		t.Fatalf("node-add through the tunnel: %s", r)
	}
	res := joinResult(t, r.Stdout)
	t.Logf("node-add through %s took %v (the join %.2f s)", res.Tunnel, r.Took, res.Seconds)
	if !res.OK || !res.Changed || res.Tunnel != tunnel || res.Connections != 1 || res.VerifiedHostKey != own ||
		res.NodedVersion == "" || res.PrimaryIP != l.node.IP().String() {
		t.Errorf("node-add's result: %+v; want joined through %s, verified with node1's own key %s, noded answering", res, tunnel, own)
	}
	// One connection for the join; the push after it finds node1 with
	// the master's ssconf already (its document's), so none for that.
	if got := l.node.CountSSHConnections() - before; got != 1 {
		t.Errorf("node1's sshd accepted %d connections during node-add, want 1:\n%s", got, l.node.SSHDLog())
	}
	if !strings.Contains(r.Stdout, `{"ssconf_push":{"node":"`+l.node.Name+`","changed":false,"seconds":`) {
		t.Errorf("node-add's push to node1: %s", r.Stdout)
	}
	if !strings.Contains(l.node.SSHDLog(), "Connection from 127.0.0.1 port") {
		t.Errorf("node1's sshd saw no connection through its tunnel:\n%s", l.node.SSHDLog())
	}
	checkJoinedBehindCallback(t, l)

	// --print-ssh-command names the tunnel, and reaches node1 by the
	// cluster's host key, as an operator recovering by hand would.
	r = must(t, "node-add --print-ssh-command", l.NodeAdd(l.ctx, "--print-ssh-command", l.node.Name))
	if !strings.Contains(r.Stdout, "-o HostName=localhost -o ProxyCommand=none -p "+strconv.Itoa(port)+" -l root "+l.node.Name) {
		t.Errorf("--print-ssh-command: %s", r.Stdout)
	}
	if r := clusterlab.Run(l.ctx, l.Master, nil, "sh", "-c", strings.TrimSpace(r.Stdout)+" hostname"); !r.OK() || strings.TrimSpace(r.Stdout) != l.node.Name {
		t.Errorf("the printed ssh command: %s", r)
	}

	t.Run("node1's sshd down", func(t *testing.T) {
		// The tunnel is up, but what it leads to, node1's sshd on its
		// localhost, does not answer.
		if err := l.node.StopSSHD(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := l.node.StartSSHD(); err != nil {
				t.Fatal(err)
			}
		}()
		r := l.NodeAdd(l.ctx, l.node.Name)
		want := "node-add: error: " + l.node.Name + ": failed at connect: the callback tunnel of " + l.node.Name + " on " + tunnel + " is up, but no sshd answered through it"
		if r.Code != 1 || !strings.Contains(r.Stderr, want) || !strings.Contains(r.Stderr, "check that sshd runs on "+l.node.Name+" and listens on localhost") {
			t.Errorf("node-add with node1's sshd down: %s\nwant %q", r, want)
		}
	})

	t.Run("dead tunnel", func(t *testing.T) {
		l.stopSupervisor(t, sup, port)
		before := l.node.CountSSHConnections()
		r := l.NodeAdd(l.ctx, l.node.Name)
		want := "node-add: error: " + l.node.Name + ": failed at connect: the callback tunnel of " + l.node.Name + " is down: nothing listens on " + tunnel + ", the port it was granted"
		if r.Code != 1 || !strings.Contains(r.Stderr, want) || !strings.Contains(r.Stderr, "node-add: hint: "+l.node.Name+": check callback-setup on "+l.node.Name) {
			t.Errorf("node-add through a dead tunnel: %s\nwant %q", r, want)
		}
		if got := l.node.CountSSHConnections() - before; got != 0 {
			t.Errorf("node1's sshd saw %d connections", got)
		}
	})

	t.Run("not node1 on the port", func(t *testing.T) {
		// Another sshd, with a host key of its own, holds the port.
		imp := "/run/impostor"
		l.inMaster(t, `set -e; mkdir -p `+imp+`; ssh-keygen -q -t ed25519 -N '' -f `+imp+`/key
printf '%s\n' 'Port `+strconv.Itoa(port)+`' 'ListenAddress 127.0.0.1' 'HostKey `+imp+`/key' 'PidFile `+imp+`/pid' \
	'LogLevel DEBUG1' 'UsePAM no' 'PermitRootLogin prohibit-password' >`+imp+`/sshd_config
/usr/sbin/sshd -f `+imp+`/sshd_config -E `+imp+`/log`)
		stop := func() {
			_, _, _, _ = l.Master.Run(context.Background(), nil, "sh", "-c", "kill $(cat "+imp+"/pid) 2>/dev/null")
		}
		t.Cleanup(stop)
		l.waitListening(t, port, true, 10*time.Second)
		r := l.NodeAdd(l.ctx, l.node.Name)
		want := "node-add: error: " + l.node.Name + ": failed at host-key: what answers on " + tunnel + " is not " + l.node.Name + ": host key of " + l.node.Name + " has changed: known "
		if r.Code != 1 || !strings.Contains(r.Stderr, want) || !strings.Contains(r.Stderr, "no login was attempted") ||
			!strings.Contains(r.Stderr, "another process, or another node's tunnel, may hold the port") {
			t.Errorf("node-add to another sshd on the port: %s\nwant %q", r, want)
		}
		log := readFile(t, l.Master.Path(imp+"/log"))
		if !strings.Contains(log, "Connection from 127.0.0.1") {
			t.Fatalf("the other sshd saw no connection:\n%s", log)
		}
		for _, bad := range []string{"userauth-request", "Accepted", "Failed", "Postponed"} {
			if strings.Contains(log, bad) {
				t.Errorf("the other sshd logged %q: node-add tried to log in:\n%s", bad, log)
			}
		}
		stop()
		l.waitListening(t, port, false, 10*time.Second)
	})

	t.Run("master restarted", func(t *testing.T) {
		sup = l.startSupervisor(t)
		l.waitListening(t, port, true, 30*time.Second)
		// Every sshd of master goes, the tunnel's session with it, as in
		// a reboot; node1's ssh sees its connection end and its
		// supervisor retries, refused, until sshd is back.
		if err := l.Master.StopSSHD(); err != nil {
			t.Fatal(err)
		}
		l.inMaster(t, `for p in $(pgrep -x sshd); do kill -KILL "$p"; done`)
		l.waitListening(t, port, false, 10*time.Second)
		time.Sleep(2 * time.Second) // down for a while: node1's retries are refused
		if err := l.Master.StartSSHD(); err != nil {
			t.Fatal(err)
		}
		started := time.Now()
		l.waitListening(t, port, true, 90*time.Second)
		t.Logf("the tunnel is back %.1f s after master's sshd started", time.Since(started).Seconds())
		if log := sup.log(); !strings.Contains(log, "the tunnel ended; starting it again") {
			t.Errorf("the supervisor did not log the restart:\n%s", log)
		}
		before := l.node.CountSSHConnections()
		r := must(t, "node-add after master's restart", l.NodeAdd(l.ctx, l.node.Name))
		if !strings.Contains(r.Stdout, l.node.Name+": already joined, nothing changed") || !strings.Contains(r.Stdout, "through its callback tunnel on "+tunnel) {
			t.Errorf("node-add after the restart: %s", r)
		}
		if got := l.node.CountSSHConnections() - before; got != 1 {
			t.Errorf("node1's sshd accepted %d connections, want 1", got)
		}
		checkJoinedBehindCallback(t, l)
	})
}

// checkJoinedBehindCallback checks node1 as checkJoined does, where the
// master cannot reach it: the cluster's host keys, ssconf equal on both
// sides, noded running on node1, node1 recorded on master; and that the
// master still does not reach node1's noded directly.
func checkJoinedBehindCallback(t *testing.T, l *cbLab) {
	t.Helper()
	for _, k := range []string{"/etc/ssh/ssh_host_ed25519_key.pub", "/etc/ssh/ssh_host_rsa_key.pub"} {
		if got, want := fingerprint(t, l.ctx, l.node, k), fingerprint(t, l.ctx, l.Master, k); got != want {
			t.Errorf("%s: %s has fingerprint %s, want the cluster's %s", l.node.Name, k, got, want)
		}
	}
	ms, err := clusterlab.Ssconf(l.Master)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := clusterlab.Ssconf(l.node)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range ms {
		if ns[k] != v {
			t.Errorf("%s: ssconf_%s = %q, master has %q", l.node.Name, k, ns[k], v)
		}
	}
	if !strings.Contains(ms["node_list"], l.node.Name+"\n") {
		t.Errorf("master's ssconf_node_list %q lacks %s", ms["node_list"], l.node.Name)
	}
	if nodedPID(l.node) == "" {
		t.Errorf("%s: no noded pid file", l.node.Name)
	}
	ctx, cancel := context.WithTimeout(l.ctx, 3*time.Second)
	defer cancel()
	if _, err := l.NodedVersion(ctx, l.node); err == nil {
		t.Errorf("master reaches node1's noded directly: the lab's firewall is not in place")
	}
}
