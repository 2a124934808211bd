package scenarios

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/qa/clusterlab"
	"github.com/nodejoin/nodejoin/qa/harness"
)

// cbLab is a lab for the machine callback: master with an /etc of its own
// (callback-grant makes the callback account with useradd), and node1,
// which reaches master while master cannot reach it: node1 drops every
// connection it did not open itself (nftables in node1's network
// namespace only).
type cbLab struct {
	*clusterlab.Lab
	ctx  context.Context
	node *harness.Host
}

const cbUser = "nodejoin-callback"

func newCallbackLab(t *testing.T) *cbLab {
	t.Helper()
	harness.Require(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("qa: the callback scenario needs nft(8) (apt-get install nftables)")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	t.Cleanup(cancel)
	l := &cbLab{Lab: clusterlab.New(t, harness.Options{Nodes: 1, WritableEtc: true}), ctx: ctx}
	l.node = l.Nodes[0]
	l.nft(t, `table inet njcallback {
	chain input {
		type filter hook input priority 0; policy accept;
		iifname "lo" accept
		ct state established,related accept
		ct state new drop
	}
}`)
	// The tunnel's far end is node1's sshd on localhost, as on a Debian
	// node, where sshd listens on every address; a lab host's listens on
	// its bridge address only.
	if err := os.WriteFile(l.node.Path("/etc/ssh/sshd_config.d/localhost.conf"), []byte("ListenAddress 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := clusterlab.Run(ctx, l.node, nil, "nj-restart-sshd"); !r.OK() {
		t.Fatalf("restarting node1's sshd: %s", r)
	}
	// The master's own address cannot reach node1's sshd any more.
	if r := l.masterSSH(t, 3, "root@"+l.node.IP().String(), "true"); r.OK() || !strings.Contains(r.Stderr, "timed out") {
		t.Fatalf("master reaches node1 through the firewall: %s", r)
	}
	return l
}

// nft loads a ruleset in node1's network namespace.
func (l *cbLab) nft(t *testing.T, rules string) {
	t.Helper()
	if r := clusterlab.Run(l.ctx, l.node, []byte(rules), "nft", "-f", "-"); !r.OK() {
		t.Fatalf("nft: %s", r)
	}
}

// masterSSH runs root's ssh on master with a timeout in seconds.
func (l *cbLab) masterSSH(t *testing.T, timeout int, args ...string) clusterlab.Result {
	t.Helper()
	argv := append([]string{"ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=" + strconv.Itoa(timeout)}, args...)
	return clusterlab.Run(l.ctx, l.Master, nil, argv...)
}

// throughTunnel logs in to node1 from master through localhost:port, with
// node1's host key pinned under its name (HostKeyAlias), never under
// localhost:port.
func (l *cbLab) throughTunnel(t *testing.T, port int) clusterlab.Result {
	t.Helper()
	return l.masterSSH(t, 5, "-p", strconv.Itoa(port), "-o", "HostKeyAlias="+l.node.Name,
		"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=/root/.ssh/known_hosts.callback",
		"root@localhost", "hostname")
}

// waitTunnel waits until master reaches node1 through port.
func (l *cbLab) waitTunnel(t *testing.T, port int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := l.throughTunnel(t, port)
		if r.OK() && strings.TrimSpace(r.Stdout) == l.node.Name {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tunnel to %s on master port %d within %v: %s", l.node.Name, port, within, r)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// listening says whether master's sshd listens on localhost:port.
func (l *cbLab) listening(t *testing.T, port int) bool {
	t.Helper()
	r := clusterlab.Run(l.ctx, l.Master, nil, "ss", "-Hltn", "sport = :"+strconv.Itoa(port))
	if !r.OK() {
		t.Fatalf("ss: %s", r)
	}
	return strings.TrimSpace(r.Stdout) != ""
}

// grant runs callback-grant on master.
func (l *cbLab) grant(t *testing.T, node, pub string, args ...string) (port int) {
	t.Helper()
	req, _ := json.Marshal(map[string]any{"node": node, "public_key": pub})
	r := clusterlab.Run(l.ctx, l.Master, req, append([]string{"callback-grant", "--client-alive-interval", "1", "--client-alive-count-max", "3"}, args...)...)
	if !r.OK() {
		t.Fatalf("callback-grant %s: %s", node, r)
	}
	var res struct{ Port int }
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil || res.Port == 0 {
		t.Fatalf("callback-grant: no port in %s (%v)", r.Stdout, err)
	}
	return res.Port
}

// setup runs callback-setup on node1 (a --key-only run when port is 0)
// and returns the callback public key.
func (l *cbLab) setup(t *testing.T, port int) string {
	t.Helper()
	argv := []string{"callback-setup", "--key-only"}
	var doc []byte
	if port != 0 {
		var keys []string
		for _, k := range []string{"ed25519", "rsa"} {
			keys = append(keys, strings.TrimSpace(readFile(t, l.Master.Path("/etc/ssh/ssh_host_"+k+"_key.pub"))))
		}
		doc, _ = json.Marshal(map[string]any{"master_host": l.Master.IP().String(), "master_host_keys": keys,
			"callback_user": cbUser, "remote_port": port, "key": "generate",
			"server_alive_interval": 1, "server_alive_count_max": 3})
		argv = argv[:1]
	}
	r := clusterlab.Run(l.ctx, l.node, doc, argv...)
	if !r.OK() {
		t.Fatalf("%s: %s", strings.Join(argv, " "), r)
	}
	var res struct {
		Key string `json:"callback_public_key"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil || res.Key == "" {
		t.Fatalf("callback-setup: no key in %s (%v)", r.Stdout, err)
	}
	return res.Key
}

// supervisor is callback-setup --run on node1.
type supervisor struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan struct{} // closed when it has exited, err then set
	err    error
}

func (s *supervisor) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.Write(p)
}
func (s *supervisor) log() string { s.mu.Lock(); defer s.mu.Unlock(); return s.stderr.String() }

func (l *cbLab) startSupervisor(t *testing.T) *supervisor {
	t.Helper()
	s := &supervisor{done: make(chan struct{})}
	s.cmd = l.node.Command(l.ctx, "sh", "-c", "echo $$ > /run/callback-supervisor.pid; exec callback-setup --run --verbose")
	s.cmd.Stderr = s
	s.cmd.WaitDelay = 2 * time.Second
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_, _, _, _ = l.node.Run(context.Background(), nil, "sh", "-c", "kill -TERM $(cat /run/callback-supervisor.pid)")
			select {
			case <-s.done:
			case <-time.After(10 * time.Second):
				_ = s.cmd.Process.Kill()
				<-s.done
			}
		}
	})
	return s
}

// inNode runs a shell script in node1.
func (l *cbLab) inNode(t *testing.T, script string) string {
	t.Helper()
	r := clusterlab.Run(l.ctx, l.node, nil, "sh", "-c", script)
	if !r.OK() {
		t.Fatalf("node1: %s: %s", script, r)
	}
	return r.Stdout
}

// callbackSSH runs ssh on node1 with the callback key against master, as
// the callback user, with extra options.
func (l *cbLab) callbackSSH(t *testing.T, key string, args ...string) clusterlab.Result {
	t.Helper()
	argv := append([]string{"timeout", "10", "ssh", "-F", "none", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
		"-i", key, "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=/etc/nodejoin/callback/known_hosts",
		"-o", "ConnectTimeout=5", "-l", cbUser}, args...)
	return clusterlab.Run(l.ctx, l.node, nil, append(argv, l.Master.IP().String())...)
}

// masterFiles is every file callback-grant may touch on master, with its
// mode and content ("absent" when missing).
func masterFiles(t *testing.T, m *harness.Host) map[string]string {
	t.Helper()
	out := map[string]string{}
	paths := []string{"/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/var/lib/nodejoin/callback.json"}
	ssh, err := filepath.Glob(m.Path("/etc/ssh") + "/*")
	if err != nil {
		t.Fatal(err)
	}
	dropIns, _ := filepath.Glob(m.Path("/etc/ssh/sshd_config.d") + "/*")
	for _, p := range append(ssh, dropIns...) {
		rel, _ := filepath.Rel(m.Path("/etc/ssh"), p)
		paths = append(paths, "/etc/ssh/"+rel)
	}
	for _, p := range paths {
		fi, err := os.Stat(m.Path(p))
		if err != nil {
			out[p] = "absent"
			continue
		}
		if fi.IsDir() {
			out[p] = fi.Mode().String()
			continue
		}
		out[p] = fi.Mode().String() + " " + readFile(t, m.Path(p))
	}
	return out
}

func diffFiles(a, b map[string]string) []string {
	var d []string
	for p, v := range a {
		if b[p] != v {
			d = append(d, p)
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			d = append(d, p)
		}
	}
	sort.Strings(d)
	return d
}

// TestCallback: node1 behind a firewall gets its grant, sets the tunnel
// up and supervises it; master reaches node1's sshd through the tunnel;
// the callback key can open its own remote forward and nothing else; a
// killed tunnel and a stale one (cut off, reaped by sshd's ClientAlive)
// come back by themselves; revoking both grants leaves master's sshd
// configuration, users and state byte-identical to before.
func TestCallback(t *testing.T) {
	l := newCallbackLab(t)
	before := masterFiles(t, l.Master)

	// node1 makes its key, master grants it a port, node1 sets up.
	pub := l.setup(t, 0)
	port := l.grant(t, l.node.Name, pub)
	if again := l.setup(t, port); again != pub {
		t.Fatalf("callback-setup replaced the key made by --key-only: %q, was %q", again, pub)
	}
	if got, _ := clusterlab.Stat(l.ctx, l.node, "/etc/nodejoin/callback/id_ed25519"); got["/etc/nodejoin/callback/id_ed25519"] != "600 root:root" {
		t.Errorf("callback key: %v, want 600 root:root", got)
	}
	// A second node's grant, whose key is made on node1 too: node1's
	// key must not take its port.
	l.inNode(t, "ssh-keygen -q -t ed25519 -N '' -C other -f /etc/nodejoin/callback/other")
	otherPort := l.grant(t, "node2", strings.TrimSpace(readFile(t, l.node.Path("/etc/nodejoin/callback/other.pub"))))
	if otherPort == port {
		t.Fatalf("two nodes got port %d", port)
	}

	// master's view of node1's host key, under node1's name.
	kh, err := l.node.KnownHosts()
	if err != nil {
		t.Fatal(err)
	}
	var khb strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(string(kh)), "\n") {
		khb.WriteString(l.node.Name + " " + strings.SplitN(line, " ", 2)[1] + "\n")
	}
	if err := os.WriteFile(l.Master.Path("/root/.ssh/known_hosts.callback"), []byte(khb.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	sup := l.startSupervisor(t)
	l.waitTunnel(t, port, 20*time.Second)

	t.Run("restrictions", func(t *testing.T) {
		key := "/etc/nodejoin/callback/id_ed25519"
		mark := len(l.Master.SSHDLog())
		checks := []struct {
			name   string
			args   []string
			stderr string // in ssh's standard error
		}{
			{"command", []string{"touch /tmp/callback-ran"}, ""},
			{"shell", []string{"-tt"}, ""},
			{"agent and X11", []string{"-A", "-X", "-o", "ForwardX11Trusted=yes", "true"}, ""},
			{"another -R port", []string{"-N", "-o", "ExitOnForwardFailure=yes", "-R", "localhost:" + strconv.Itoa(otherPort) + ":localhost:22"},
				"remote port forwarding failed for listen port " + strconv.Itoa(otherPort)},
			{"-R on all addresses", []string{"-N", "-o", "ExitOnForwardFailure=yes", "-R", "0.0.0.0:" + strconv.Itoa(port+500) + ":localhost:22"},
				"remote port forwarding failed for listen port " + strconv.Itoa(port+500)},
		}
		for _, c := range checks {
			r := l.callbackSSH(t, key, c.args...)
			if r.Code != 255 || (c.stderr != "" && !strings.Contains(r.Stderr, c.stderr)) {
				t.Errorf("%s: want ssh to exit 255 refused (%q), got %s", c.name, c.stderr, r)
			}
		}
		if _, err := os.Stat(l.Master.Path("/tmp/callback-ran")); err == nil {
			t.Errorf("the callback key ran a command on master")
		}
		// -L: ssh listens on node1, but master's sshd refuses each channel.
		r := clusterlab.Run(l.ctx, l.node, nil, "sh", "-c", `
timeout 8 ssh -F none -o BatchMode=yes -o IdentitiesOnly=yes -i `+key+` -o StrictHostKeyChecking=yes \
	-o UserKnownHostsFile=/etc/nodejoin/callback/known_hosts -l `+cbUser+` -N -L 127.0.0.1:47999:localhost:22 `+l.Master.IP().String()+` &
sleep 1.5
out=$(timeout 3 ssh-keyscan -p 47999 127.0.0.1 2>/dev/null)
kill %1
[ -z "$out" ]`)
		if !r.OK() {
			t.Errorf("-L: master's sshd answered through a local forward: %s", r)
		}
		time.Sleep(300 * time.Millisecond)
		log := l.Master.SSHDLog()[mark:]
		for _, want := range []string{"no more sessions", "refused local port forward",
			"to remote forward to host localhost port " + strconv.Itoa(otherPort) + ", but the request was denied"} {
			if !strings.Contains(log, want) {
				t.Errorf("master's sshd log lacks %q:\n%s", want, log)
			}
		}
		// sshd's effective settings for the account.
		r = clusterlab.Run(l.ctx, l.Master, nil, "/usr/sbin/sshd", "-T", "-C", "user="+cbUser+",host=node1,addr="+l.node.IP().String())
		for _, want := range []string{"maxsessions 0", "allowtcpforwarding remote", "permitopen none", "allowagentforwarding no",
			"x11forwarding no", "allowstreamlocalforwarding no", "permittty no", "permittunnel no", "forcecommand /bin/false",
			"clientaliveinterval 1", "clientalivecountmax 3", "gatewayports no"} {
			if !strings.Contains(r.Stdout, "\n"+want+"\n") {
				t.Errorf("sshd -T for %s lacks %q: %s", cbUser, want, r)
			}
		}
		// The other node's port is not node1's to take, but its own key's.
		if r := l.callbackSSH(t, "/etc/nodejoin/callback/other", "-N", "-o", "ExitOnForwardFailure=yes",
			"-R", "localhost:"+strconv.Itoa(port)+":localhost:22"); r.Code != 255 {
			t.Errorf("node2's key took node1's port: %s", r)
		}
	})

	// The account's password field: "*" lets the key in with and without
	// PAM; useradd's "!" locks it against keys too when UsePAM is no.
	t.Run("password field", func(t *testing.T) {
		try := func() clusterlab.Result { // node2's key on its own port, for 3 s
			return clusterlab.Run(l.ctx, l.node, nil, "timeout", "3", "ssh", "-F", "none", "-o", "BatchMode=yes",
				"-o", "IdentitiesOnly=yes", "-i", "/etc/nodejoin/callback/other", "-o", "StrictHostKeyChecking=yes",
				"-o", "UserKnownHostsFile=/etc/nodejoin/callback/known_hosts", "-l", cbUser, "-N",
				"-o", "ExitOnForwardFailure=yes", "-R", "localhost:"+strconv.Itoa(otherPort)+":localhost:22", l.Master.IP().String())
		}
		inMaster := func(script string) {
			t.Helper()
			if r := clusterlab.Run(l.ctx, l.Master, nil, "sh", "-c", script); !r.OK() {
				t.Fatalf("master: %s: %s", script, r)
			}
		}
		for _, c := range []struct {
			pam, field string
			in         bool
		}{{"no", "*", true}, {"no", "!", false}, {"yes", "!", true}, {"yes", "*", true}} {
			inMaster(`sed -i 's/^UsePAM .*/UsePAM ` + c.pam + `/' /etc/ssh/sshd_config && nj-restart-sshd && usermod -p '` + c.field + `' ` + cbUser)
			mark := len(l.Master.SSHDLog())
			r := try()
			if in := r.Code == 124; in != c.in {
				t.Errorf("UsePAM %s, password field %q: logged in %v, want %v: %s\n%s", c.pam, c.field, in, c.in, r, l.Master.SSHDLog()[mark:])
			}
			if !c.in && !strings.Contains(l.Master.SSHDLog()[mark:], "account is locked") {
				t.Errorf("UsePAM %s, password field %q: sshd did not say the account is locked:\n%s", c.pam, c.field, l.Master.SSHDLog()[mark:])
			}
		}
		inMaster(`sed -i 's/^UsePAM .*/UsePAM no/' /etc/ssh/sshd_config && nj-restart-sshd && usermod -p '*' ` + cbUser)
	})

	t.Run("killed", func(t *testing.T) {
		l.inNode(t, `p=$(cat /run/callback-supervisor.pid); kill -KILL $(pgrep -P $p ssh)`)
		l.waitTunnel(t, port, 20*time.Second)
		if !strings.Contains(sup.log(), "the tunnel ended; starting it again") {
			t.Errorf("the supervisor did not log the restart:\n%s", sup.log())
		}
	})

	t.Run("stale", func(t *testing.T) {
		// node1 is cut off: packets to and from master are dropped, new
		// connections refused at once. master's session of the tunnel is
		// then stale and still holds the port, until sshd's ClientAlive
		// probes (1 s × 3) go unanswered.
		mark := len(l.Master.SSHDLog())
		m := l.Master.IP().String()
		l.nft(t, `table inet njcut {
	chain output {
		type filter hook output priority 0; policy accept;
		ip daddr `+m+` tcp flags syn reject with tcp reset
		ip daddr `+m+` drop
	}
	chain input {
		type filter hook input priority 0; policy accept;
		ip saddr `+m+` drop
	}
}`)
		deadline := time.Now().Add(15 * time.Second)
		for l.listening(t, port) {
			if time.Now().After(deadline) {
				t.Fatalf("master still listens on %d 15 s after node1 was cut off", port)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if log := l.Master.SSHDLog()[mark:]; !strings.Contains(log, "Timeout, client not responding") {
			t.Errorf("the port was not freed by ClientAlive:\n%s", log)
		}
		l.nft(t, "delete table inet njcut")
		l.waitTunnel(t, port, 30*time.Second)
	})

	// SIGTERM stops the supervisor and its ssh, exit 0.
	l.inNode(t, `kill -TERM $(cat /run/callback-supervisor.pid)`)
	select {
	case <-sup.done:
		if sup.err != nil {
			t.Errorf("callback-setup --run after SIGTERM: %v\n%s", sup.err, sup.log())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("callback-setup --run still runs 10 s after SIGTERM")
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.listening(t, port) {
		if time.Now().After(deadline) {
			t.Fatalf("the tunnel survives its supervisor")
		}
		time.Sleep(200 * time.Millisecond)
	}

	for _, n := range []string{"node2", l.node.Name} {
		if r := clusterlab.Run(l.ctx, l.Master, nil, "callback-grant", "--revoke", n); !r.OK() {
			t.Fatalf("callback-grant --revoke %s: %s", n, r)
		}
	}
	if d := diffFiles(before, masterFiles(t, l.Master)); len(d) > 0 {
		for _, p := range d {
			t.Errorf("after the last revoke %s differs:\nbefore: %q\nafter:  %q", p, before[p], masterFiles(t, l.Master)[p])
		}
	}
}
