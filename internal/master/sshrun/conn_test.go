package sshrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/fakessh"
)

func TestMain(m *testing.M) {
	if fakessh.IsFake() {
		os.Exit(fakessh.Main())
	}
	code := m.Run()
	// The keys are unencrypted private keys: they go with the test binary.
	if keysDir != "" {
		if err := os.RemoveAll(keysDir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

var (
	keysOnce sync.Once
	keysDir  string
	keysErr  error
)

// testKey returns a real public key of kind ("ed25519", "ecdsa", "rsa"),
// number n, made once per test binary with ssh-keygen.
func testKey(t *testing.T, kind string, n int) HostKey {
	t.Helper()
	keysOnce.Do(func() {
		keysDir, keysErr = os.MkdirTemp("", "sshrun-keys-")
		for _, k := range []string{"ed25519", "ecdsa", "rsa"} {
			for i := 0; i < 2 && keysErr == nil; i++ {
				name := filepath.Join(keysDir, k+string(rune('0'+i)))
				keysErr = exec.Command("ssh-keygen", "-q", "-t", k, "-N", "", "-C", "", "-f", name).Run()
			}
		}
	})
	if keysErr != nil {
		t.Skipf("needs ssh-keygen: %v", keysErr)
	}
	b, err := os.ReadFile(filepath.Join(keysDir, kind+string(rune('0'+n))+".pub"))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	return HostKey{Type: f[0], Base64: f[1]}
}

// newFake installs the fake ssh with the host keys.
func newFake(t *testing.T, mode string, hostkeys ...HostKey) *fakessh.Fake {
	t.Helper()
	var ks []fakessh.HostKey
	for _, k := range hostkeys {
		ks = append(ks, fakessh.HostKey{Type: k.Type, Base64: k.Base64})
	}
	return fakessh.Install(t, mode, ks...)
}

func dial(t *testing.T, cfg Config) (*Conn, error) {
	t.Helper()
	if cfg.Host == "" {
		cfg.Host = "node1"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, cfg)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func TestDialHostKey(t *testing.T) {
	ed, ed2, rsa := testKey(t, "ed25519", 0), testKey(t, "ed25519", 1), testKey(t, "rsa", 0)
	for _, tc := range []struct {
		name        string
		server      []HostKey
		known       string // user_known_hosts
		cfg         Config
		wantErr     string
		wantKey     HostKey
		wantConns   int
		wantProblem HostKeyProblem
	}{
		{name: "unknown", server: []HostKey{ed, rsa},
			wantErr: "host key of node1 is unknown: fingerprint " + ed.Fingerprint(), wantConns: 1, wantProblem: HostKeyUnknown},
		{name: "known", server: []HostKey{ed, rsa}, known: ed.Line("node1"),
			wantKey: ed, wantConns: 1},
		{name: "known rsa only: ssh asks for rsa", server: []HostKey{ed, rsa}, known: rsa.Line("node1"),
			wantKey: rsa, wantConns: 1},
		{name: "changed", server: []HostKey{ed, rsa}, known: ed2.Line("node1"),
			wantErr:   "host key of node1 has changed: known " + ed2.Fingerprint() + ", offered " + ed.Fingerprint(),
			wantConns: 1, wantProblem: HostKeyChanged},
		{name: "changed is refused with accept-new", server: []HostKey{ed}, known: ed2.Line("node1"), cfg: Config{AcceptNew: true},
			wantErr:   "host key of node1 has changed: known " + ed2.Fingerprint() + ", offered " + ed.Fingerprint(),
			wantConns: 1, wantProblem: HostKeyChanged},
		{name: "revoked", server: []HostKey{ed}, known: "@revoked " + ed.Line("node1"),
			wantErr: "host key of node1 is marked @revoked in known_hosts: " + ed.Fingerprint(), wantConns: 1, wantProblem: HostKeyRevoked},
		{name: "accept new", server: []HostKey{ed}, cfg: Config{AcceptNew: true}, wantKey: ed, wantConns: 1},
		{name: "pinned", server: []HostKey{ed, rsa}, cfg: Config{HostKeyFingerprints: []string{ed.Fingerprint()}},
			wantKey: ed, wantConns: 1},
		{name: "pin overrides known_hosts", server: []HostKey{ed}, known: ed2.Line("node1"),
			cfg: Config{HostKeyFingerprints: []string{ed.Fingerprint()}}, wantKey: ed, wantConns: 1},
		// ed25519 offered first, not pinned; no ecdsa; then rsa matches.
		{name: "pinned rsa", server: []HostKey{ed, rsa}, cfg: Config{HostKeyFingerprints: []string{rsa.Fingerprint()}},
			wantKey: rsa, wantConns: 3},
		{name: "pin matches nothing", server: []HostKey{ed, rsa}, cfg: Config{HostKeyFingerprints: []string{ed2.Fingerprint()}},
			wantErr:   "host key of node1 does not match --host-key-fingerprint " + ed2.Fingerprint() + ": offered " + ed.Fingerprint() + ", " + rsa.Fingerprint(),
			wantConns: 3, wantProblem: HostKeyNotPinned},
		// The cluster's host key: every node has it, so it is trusted only
		// for a host the caller vouches for (a recorded node), pin or not.
		{name: "cluster key, not trusted", server: []HostKey{ed}, known: ed2.Line("node1"), cfg: Config{ClusterKeys: []HostKey{ed, rsa}},
			wantErr:   "node1 offers the cluster's host key " + ed.Fingerprint() + " but is not a recorded node; every node holds that key, so it does not show which machine this is",
			wantConns: 1, wantProblem: HostKeyCluster},
		{name: "cluster key, not trusted, pinned other", server: []HostKey{ed}, cfg: Config{ClusterKeys: []HostKey{ed}, HostKeyFingerprints: []string{ed2.Fingerprint()}},
			wantErr:   "node1 offers the cluster's host key " + ed.Fingerprint() + " but is not a recorded node; every node holds that key, so it does not show which machine this is",
			wantConns: 3, wantProblem: HostKeyCluster},
		{name: "cluster key, trusted, pinned other", server: []HostKey{ed, rsa}, cfg: Config{ClusterKeys: []HostKey{ed, rsa}, TrustClusterKeys: true, HostKeyFingerprints: []string{ed2.Fingerprint()}},
			wantKey: ed, wantConns: 1},
		{name: "cluster key, trusted, no pin", server: []HostKey{ed}, cfg: Config{ClusterKeys: []HostKey{ed}, TrustClusterKeys: true},
			wantKey: ed, wantConns: 1},
		{name: "cluster key trusted, another key offered", server: []HostKey{ed2}, cfg: Config{ClusterKeys: []HostKey{ed}, TrustClusterKeys: true},
			wantErr:   "host key of node1 has changed: known " + ed.Fingerprint() + ", offered " + ed2.Fingerprint(),
			wantConns: 1, wantProblem: HostKeyChanged},
		{name: "cluster key revoked", server: []HostKey{ed}, known: "@revoked " + ed.Line("node1"), cfg: Config{ClusterKeys: []HostKey{ed}, TrustClusterKeys: true},
			wantErr: "host key of node1 is marked @revoked in known_hosts: " + ed.Fingerprint(), wantConns: 1, wantProblem: HostKeyRevoked},
		{name: "known under [host]:port", server: []HostKey{ed}, known: "[node1]:2222 " + ed.Type + " " + ed.Base64,
			cfg: Config{Port: 2222}, wantKey: ed, wantConns: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, "ok", tc.server...)
			f.Write(t, "user_known_hosts", tc.known+"\n")
			c, err := dial(t, tc.cfg)
			if got := f.Connections(); got != tc.wantConns {
				t.Errorf("connections = %d, want %d", got, tc.wantConns)
			}
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				var hke *HostKeyError
				if !errors.As(err, &hke) || hke.Problem != tc.wantProblem || !errors.Is(err, ErrHostKey) {
					t.Fatalf("err = %#v, want a HostKeyError %q", err, tc.wantProblem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.HostKey() != tc.wantKey {
				t.Errorf("HostKey = %s, want %s", c.HostKey().Fingerprint(), tc.wantKey.Fingerprint())
			}
			if c.Attempts() != tc.wantConns {
				t.Errorf("Attempts = %d, want %d", c.Attempts(), tc.wantConns)
			}
		})
	}
}

func TestDialFailures(t *testing.T) {
	ed := testKey(t, "ed25519", 0)
	for _, tc := range []struct {
		mode    string
		timeout time.Duration
		want    error
		wantErr string
	}{
		{mode: "unreachable", want: ErrUnreachable, wantErr: "node unreachable: ssh: connect to host node1 port 22: Connection refused"},
		{mode: "authfail", want: ErrAuth, wantErr: "authentication failed: root@node1: Permission denied (publickey)."},
		{mode: "hang", timeout: 2 * time.Second, want: ErrTimeout, wantErr: "timed out: connecting to node1: context deadline exceeded"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			// A private TMPDIR: other packages' tests open connections too.
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			f := newFake(t, tc.mode, ed)
			f.Write(t, "user_known_hosts", ed.Line("node1")+"\n")
			ctx := context.Background()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			_, err := Dial(ctx, Config{Host: "node1"})
			if !errors.Is(err, tc.want) || err.Error() != tc.wantErr {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if f.Connections() != 1 {
				t.Errorf("connections = %d, want 1", f.Connections())
			}
			if left, _ := filepath.Glob(filepath.Join(tmp, "nodejoin-ssh-*")); len(left) > 0 {
				t.Errorf("control directory left behind: %v", left)
			}
		})
	}
}

func TestDialRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		cfg     Config
		wantErr string
	}{
		{Config{Host: "-oProxyCommand=evil"}, `"-oProxyCommand=evil": not a host name or address`},
		{Config{Host: "node1", User: "root;x"}, `"root;x": not a user name`},
		{Config{Host: "node1", HostKeyFingerprints: []string{"MD5:aa"}}, `"MD5:aa": not a SHA256 fingerprint (ssh-keygen -lf prints SHA256:<43 characters>)`},
	} {
		_, err := Dial(context.Background(), tc.cfg)
		if err == nil || err.Error() != tc.wantErr {
			t.Errorf("Dial(%+v) = %v, want %q", tc.cfg, err, tc.wantErr)
		}
	}
}

func TestRun(t *testing.T) {
	ed := testKey(t, "ed25519", 0)
	f := newFake(t, "ok", ed)
	f.Write(t, "user_known_hosts", ed.Line("node1")+"\n")
	f.Program(t, "echo-stdin", `cat; echo "args: $*"; echo "to stderr" >&2`)
	f.Program(t, "reject", `cat >/dev/null; echo "reject: error: invalid input: /cluster_name: wrong" >&2; exit 3`)
	f.Program(t, "fail", `echo "fail: error: writing /x: no space" >&2; exit 1`)
	f.Program(t, "garbage", `echo "this is not JSON"`)
	f.Program(t, "slow", `sleep 30`)
	// Exits at once, but its output pipes stay open 4 s longer, as a
	// starved ControlMaster keeps them after its mux client exited.
	f.Program(t, "lingering", `echo '{"done": true}'; (sleep 4) & exit 0`)
	c, err := dial(t, Config{})
	if err != nil {
		t.Fatal(err)
	}
	secret := "hmac-secret-0123456789"
	ctx := context.Background()

	res, err := c.Run(ctx, []string{"echo-stdin", "--debug", "it's"}, []byte(`{"hmac_key":"`+secret+`"}`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"hmac_key":"` + secret + `"}` + "\nargs: --debug it's\n"; string(res.Stdout) != want || res.Status != 0 {
		t.Errorf("stdout = %q status %d, want %q", res.Stdout, res.Status, want)
	}
	if string(res.Stderr) != "to stderr\n" {
		t.Errorf("stderr = %q", res.Stderr)
	}

	for _, tc := range []struct {
		prog       string
		wantStatus int
		wantStderr string
		wantStdout string
	}{
		{"reject", 3, "reject: error: invalid input: /cluster_name: wrong\n", ""},
		{"fail", 1, "fail: error: writing /x: no space\n", ""},
		{"garbage", 0, "", "this is not JSON\n"},
	} {
		res, err := c.Run(ctx, []string{tc.prog}, []byte("{}"))
		if err != nil {
			t.Fatalf("%s: %v", tc.prog, err)
		}
		if res.Status != tc.wantStatus || string(res.Stderr) != tc.wantStderr || string(res.Stdout) != tc.wantStdout {
			t.Errorf("%s: status %d stdout %q stderr %q", tc.prog, res.Status, res.Stdout, res.Stderr)
		}
	}

	res, err = c.Run(ctx, []string{"lingering"}, nil)
	if err != nil || res.Status != 0 || string(res.Stdout) != `{"done": true}`+"\n" {
		t.Errorf("lingering: status %v stdout %q, %v; want 0, its output, no error", res.Status, res.Stdout, err)
	}

	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Run(tctx, []string{"slow"}, nil)
	if !errors.Is(err, ErrTimeout) || err.Error() != "timed out: running slow on node1: context deadline exceeded" {
		t.Errorf("slow: err = %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("slow: took %v", time.Since(start))
	}

	if f.Connections() != 1 {
		t.Errorf("connections = %d, want 1", f.Connections())
	}
	cmdlines := f.Cmdlines()
	if strings.Contains(cmdlines, secret) {
		t.Errorf("the secret is on an ssh command line:\n%s", cmdlines)
	}
	if !strings.Contains(cmdlines, "echo-stdin --debug 'it'\\''s'") {
		t.Errorf("remote command not quoted as expected:\n%s", cmdlines)
	}

	// After the master is gone, a session fails: no second connection.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = c.Run(ctx, []string{"echo-stdin"}, nil)
	if !errors.Is(err, ErrConnection) {
		t.Errorf("after Close: err = %v, want ErrConnection", err)
	}
	if f.Connections() != 1 {
		t.Errorf("connections after Close = %d, want 1", f.Connections())
	}
	if _, err := os.Stat(c.dir); !os.IsNotExist(err) {
		t.Errorf("private directory left behind: %v", err)
	}
}

func TestFingerprintMatchesSSHKeygen(t *testing.T) {
	for _, kind := range []string{"ed25519", "ecdsa", "rsa"} {
		k := testKey(t, kind, 0)
		out, err := exec.Command("ssh-keygen", "-lf", filepath.Join(keysDir, kind+"0.pub")).Output()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Fields(string(out))[1]; got != k.Fingerprint() {
			t.Errorf("%s: Fingerprint = %s, ssh-keygen says %s", kind, k.Fingerprint(), got)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"prepare-node-join", "--debug"}, "prepare-node-join --debug"},
		{[]string{"/usr/lib/x y", ""}, "'/usr/lib/x y' ''"},
		{[]string{"a'b", "$HOME", "a;b"}, `'a'\''b' '$HOME' 'a;b'`},
	} {
		if got := ShellQuote(tc.in); got != tc.want {
			t.Errorf("ShellQuote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// A node reached at another address (its callback tunnel on the master's
// localhost) is checked under its own name: an entry for the address, as
// another node that held the port left it, is neither trusted nor a
// reason to refuse.
func TestDialAddress(t *testing.T) {
	ed, ed2 := testKey(t, "ed25519", 0), testKey(t, "ed25519", 1)
	tunnel := Config{Address: "localhost", Port: 22000}
	for _, tc := range []struct {
		name    string
		server  HostKey
		known   string
		wantErr string
	}{
		{name: "known under its name", server: ed, known: ed.Line("node1") + "\n" + ed2.Line("[localhost]:22000")},
		{name: "known under the address only", server: ed, known: ed.Line("[localhost]:22000"),
			wantErr: "host key of node1 is unknown: fingerprint " + ed.Fingerprint()},
		{name: "another machine on the port", server: ed2, known: ed.Line("node1") + "\n" + ed2.Line("[localhost]:22000"),
			wantErr: "host key of node1 has changed: known " + ed.Fingerprint() + ", offered " + ed2.Fingerprint()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, "ok", tc.server)
			f.Write(t, "user_known_hosts", tc.known+"\n")
			c, err := dial(t, tunnel)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if c.HostKey() != tc.server {
				t.Errorf("HostKey = %s, want %s", c.HostKey().Fingerprint(), tc.server.Fingerprint())
			}
			if got := f.Connections(); got != 1 {
				t.Errorf("connections = %d, want 1", got)
			}
			if b, _ := os.ReadFile(filepath.Join(f.Dir, "connections")); string(b) != "node1 via localhost\n" {
				t.Errorf("connections: %q, want node1 via localhost", b)
			}
			if cl := f.Cmdlines(); !strings.Contains(cl, "-o HostName=localhost -o HostKeyAlias=node1 -o ProxyCommand=none -p 22000") {
				t.Errorf("ssh command lines lack the address:\n%s", cl)
			}
		})
	}
	if _, err := Dial(context.Background(), Config{Host: "node1", Address: "-oProxyCommand=x"}); err == nil ||
		err.Error() != `"-oProxyCommand=x": not a host name or address` {
		t.Errorf("a bad address: %v", err)
	}
}

// Forward reaches a port of the node over the one connection.
func TestForward(t *testing.T) {
	ed := testKey(t, "ed25519", 0)
	f := newFake(t, "ok", ed)
	f.Write(t, "user_known_hosts", ed.Line("node1")+"\n")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, "hello from the node")
			c.Close()
		}
	}()
	c, err := dial(t, Config{})
	if err != nil {
		t.Fatal(err)
	}
	sock, err := c.Forward(context.Background(), "127.0.0.1", l.Addr().(*net.TCPAddr).Port)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(sock) != c.dir {
		t.Errorf("socket %s is not in the private directory %s", sock, c.dir)
	}
	for range 2 {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(conn)
		conn.Close()
		if string(b) != "hello from the node\n" {
			t.Errorf("through the socket: %q", b)
		}
	}
	if got := f.Connections(); got != 1 {
		t.Errorf("connections = %d, want 1", got)
	}
	if _, err := c.Forward(context.Background(), "127.0.0.1", 0); err == nil {
		t.Error("port 0 forwarded")
	}
}

// TestCloseWrappedSSH: an ssh that is a script around the real one (the
// real one its child, holding the master's stderr) is ended by Close as a
// whole, the connection with it.
func TestCloseWrappedSSH(t *testing.T) {
	ed := testKey(t, "ed25519", 0)
	f := newFake(t, "ok", ed)
	f.Write(t, "user_known_hosts", ed.Line("node1")+"\n")
	real, err := exec.LookPath("ssh")
	if err != nil {
		t.Fatal(err)
	}
	wrapper := filepath.Join(t.TempDir(), "ssh-wrapper")
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\n'"+real+"' \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, Config{Host: "node1", SSH: wrapper})
	if err != nil {
		t.Fatal(err)
	}
	ctl := c.ctl
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Close of a wrapped ssh did not return")
	}
	if _, err := os.Stat(ctl); err == nil {
		t.Errorf("the control socket %s is left", ctl)
	}
}

// TestCloseSIGTERMAgain: a master that misses the first SIGTERM, as
// OpenSSH 9.2's sometimes does, is ended by a later one, not by the kill
// five seconds on.
func TestCloseSIGTERMAgain(t *testing.T) {
	ed := testKey(t, "ed25519", 0)
	f := newFake(t, "term-late", ed)
	f.Write(t, "user_known_hosts", ed.Line("node1")+"\n")
	c, err := dial(t, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(f.Dir, "terminated")); err != nil || string(b) != "SIGTERM\n" {
		t.Errorf("the master was not ended by SIGTERM (%q, %v): killed instead", b, err)
	}
}
