package join

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/fakessh"
	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/master/clusterinit"
	"github.com/nodejoin/nodejoin/internal/master/clustertest"
	"github.com/nodejoin/nodejoin/internal/master/sshrun"
	"github.com/nodejoin/nodejoin/internal/node/nodedserver"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/ssconf"
)

func TestMain(m *testing.M) {
	if fakessh.IsFake() {
		os.Exit(fakessh.Main())
	}
	os.Exit(m.Run())
}

// setup makes a cluster and a fake node (fake ssh) whose host key is
// known to the master; the node's programs are scripts the test writes.
func setup(t *testing.T) (*cluster.Cluster, *fakessh.Fake, Options) {
	t.Helper()
	c := clustertest.New(t, clusterinit.InitOptions{Root: t.TempDir(), ClusterName: "c1.example.org", MasterNode: "master.example.org", MasterIP: "127.0.0.1"})
	f := fakessh.Install(t, "ok", nodeKey)
	f.Write(t, "user_known_hosts", "127.0.0.1 "+nodeKey.Type+" "+nodeKey.Base64+"\n")
	port := freePort(t)
	return c, f, Options{Cluster: c, PrepareProgram: "prepare-node-join", SetupProgram: "node-daemon-setup",
		NodeDaemonPort: port, NodeDaemonTimeout: 2 * time.Second, Timeout: 30 * time.Second,
		Log: slog.New(slog.DiscardHandler), SSH: sshrun.Config{}}
}

// nodeKey is the fake node's own host key, before it joins.
var nodeKey = fakessh.HostKey{Type: "ssh-ed25519", Base64: "AAAAC3NzaC1lZDI1NTE5AAAAIDTE4zJxGk8D1oXz+xq0WbMz0sQ2kKpLrYtH3mN6c2dE"}

func freePort(t *testing.T) int {
	t.Helper()
	p, err := fixture.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// prepareOK is a prepare-node-join that keeps its input and reports the
// cluster's host keys and a new root key.
func prepareOK(t *testing.T, c *cluster.Cluster, f *fakessh.Fake) {
	doc, err := c.PrepareDoc()
	if err != nil {
		t.Fatal(err)
	}
	fps := map[string]string{}
	for _, k := range doc.SSHHostKey {
		fs := strings.Fields(k.Public)
		fps[k.Kind] = fakessh.HostKey{Type: fs[0], Base64: fs[1]}.Fingerprint()
	}
	res, _ := json.Marshal(joindoc.Result{Program: "prepare-node-join", Changed: true,
		RootPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeNodeRootKey0000000000000000000000000000 root@node", HostKeyFingerprints: fps})
	f.Program(t, "prepare-node-join", fmt.Sprintf("cat >%q\necho '%s'\n", filepath.Join(f.Dir, "prepare.json"), res))
}

func setupOK(f *fakessh.Fake, t *testing.T) {
	f.Program(t, "node-daemon-setup", fmt.Sprintf("cat >%q\necho '{\"program\":\"node-daemon-setup\",\"changed\":true,\"dry_run\":false,\"files\":[],\"restarted\":[\"node daemon\"]}'\n", filepath.Join(f.Dir, "setup.json")))
}

// serveNoded runs a node daemon with the cluster's server.pem.
func serveNoded(t *testing.T, c *cluster.Cluster, port int) {
	serveNodedWith(t, c, port, map[string]string{"cluster_name": "c1.example.org"})
}

// serveNodedWith runs a node daemon whose ssconf holds values, and returns
// its root.
func serveNodedWith(t *testing.T, c *cluster.Cluster, port int, values map[string]string) string {
	root := t.TempDir()
	cfg, _ := nodeconf.Load(root)
	os.MkdirAll(cfg.Path(cfg.DataDir), 0o755)
	pem, _ := os.ReadFile(c.Path(nodeconf.ServerPEM))
	os.WriteFile(cfg.Path(cfg.DataDir+"/server.pem"), pem, 0o600)
	for k, v := range values {
		os.WriteFile(cfg.Path(ssconf.Path(cfg.DataDir, k)), ssconf.Format(v), 0o444)
	}
	srv, err := nodedserver.LoadServer(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return root
}

// A node set up from the master's document accepts the master's ssconf
// push: the document lists the master's client certificate. A node whose
// list does not (set up before the list existed) refuses it, and the push
// says why.
func TestPushSsconf(t *testing.T) {
	c, _, o := setup(t)
	if _, err := c.RecordNode(cluster.Node{Name: "127.0.0.1", PrimaryIP: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	doc, err := c.DaemonSetupDoc("127.0.0.1", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	root := serveNodedWith(t, c, o.NodeDaemonPort, doc.Ssconf)
	// A value the node does not have yet, so that the push changes it.
	os.WriteFile(filepath.Join(c.Config.Path(c.Config.DataDir), "ssconf_cluster_tags"), []byte("pushed\n"), 0o444)
	res, err := PushSsconf(context.Background(), o, 1)
	if err != nil || len(res) != 1 || res[0].Error != "" || !res[0].Changed {
		t.Fatalf("push: %+v, %v", res, err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "var/lib/ganeti/ssconf_cluster_tags")); string(b) != "pushed\n" {
		t.Errorf("the node's ssconf_cluster_tags = %q", b)
	}

	c2, _, o2 := setup(t)
	if _, err := c2.RecordNode(cluster.Node{Name: "127.0.0.1", PrimaryIP: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	serveNodedWith(t, c2, o2.NodeDaemonPort, map[string]string{"cluster_name": "c1.example.org", "master_node": "master.example.org"})
	res, err = PushSsconf(context.Background(), o2, 1)
	want := "updating ssconf through the node daemon: PUT /ssconf: 403 Forbidden: the client certificate (SHA-1 " +
		certs.Digest(c2.Client.Cert) + ") is not in this node's ssconf_master_candidates_certs"
	if err != nil || len(res) != 1 || res[0].Error != want {
		t.Errorf("push to a node without the master's certificate listed: %+v, %v; want %s", res, err, want)
	}
}

func TestJoin(t *testing.T) {
	c, f, o := setup(t)
	prepareOK(t, c, f)
	setupOK(f, t)
	serveNoded(t, c, o.NodeDaemonPort)
	var steps []string
	o.Progress = func(node, step string) { steps = append(steps, step) }

	r := Join(context.Background(), o, "127.0.0.1")
	if !r.OK || r.Step != StepDone {
		t.Fatalf("result: %+v", r)
	}
	if got := strings.Join(steps, " "); got != "resolve connect prepare-node-join node-daemon-setup node-daemon record" {
		t.Errorf("steps: %s", got)
	}
	if f.Connections() != 1 || r.Connections != 1 {
		t.Errorf("connections: %d (reported %d), want 1", f.Connections(), r.Connections)
	}
	// The documents went on stdin, complete; the secrets never on a command line.
	b, _ := os.ReadFile(filepath.Join(f.Dir, "setup.json"))
	sd, err := joindoc.DecodeDaemonSetup(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("node-daemon-setup's input: %v", err)
	}
	if sd.NodeName != "127.0.0.1" || !strings.Contains(sd.Ssconf["node_list"], "127.0.0.1") {
		t.Errorf("node-daemon-setup's input: %+v", sd.Ssconf)
	}
	if strings.Contains(f.Cmdlines(), strings.TrimSpace(sd.HMACKey)) || strings.Contains(f.Cmdlines(), "PRIVATE KEY") {
		t.Error("a secret is on an ssh command line")
	}
	pk, _ := c.PublicKeys()
	if !strings.HasPrefix(pk["127.0.0.1"], "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeNodeRootKey") {
		t.Errorf("ganeti_pub_keys: %v", pk)
	}
	if out, _ := json.Marshal(r); strings.Contains(string(out), "PRIVATE") {
		t.Error("the result holds key material")
	}
	// The node now presents the cluster's key; the report says so, and
	// which key the connection was verified with.
	if want := clusterKeys(t, c)[0].Fingerprint(); r.HostKey != want || r.VerifiedHostKey != nodeKey.Fingerprint() {
		t.Errorf("host_key %s, verified_host_key %s; want %s, %s", r.HostKey, r.VerifiedHostKey, want, nodeKey.Fingerprint())
	}
	if !r.Changed || !r.Recorded {
		t.Errorf("changed %v, recorded %v; want both", r.Changed, r.Recorded)
	}
}

// clusterKeys are the cluster's host keys, ed25519 first.
func clusterKeys(t *testing.T, c *cluster.Cluster) []fakessh.HostKey {
	t.Helper()
	doc, err := c.PrepareDoc()
	if err != nil {
		t.Fatal(err)
	}
	var out []fakessh.HostKey
	for _, k := range ClusterHostKeys(doc) {
		hk := fakessh.HostKey{Type: k.Type, Base64: k.Base64}
		if k.Type == "ssh-ed25519" {
			out = append([]fakessh.HostKey{hk}, out...)
		} else {
			out = append(out, hk)
		}
	}
	return out
}

// serverKeys makes the fake node offer keys, preferred first.
func serverKeys(t *testing.T, f *fakessh.Fake, keys []fakessh.HostKey) {
	var lines []string
	for _, k := range keys {
		lines = append(lines, k.Type+" "+k.Base64)
	}
	f.Write(t, "hostkeys", strings.Join(lines, "\n")+"\n")
}

// A node that already joined presents the cluster's host key. For a
// recorded node that is the expected state, with or without the pin that
// was given for its first join; for a name the master has not recorded the
// cluster key shows nothing (every node holds it) and is refused unless
// pinned itself.
func TestJoinClusterHostKey(t *testing.T) {
	for _, tc := range []struct {
		name     string
		recorded bool
		pin      string // "node": the node's own key, "cluster": the cluster's, "": none
		wantMsg  string // "" = joins
		wantHint string
	}{
		{name: "recorded, pinned own key", recorded: true, pin: "node"},
		{name: "recorded, no pin", recorded: true},
		{name: "not recorded, pinned own key", pin: "node",
			wantMsg:  "127.0.0.1 offers the cluster's host key SHA256:",
			wantHint: "pin the cluster's key for it: --host-key-fingerprint 127.0.0.1=SHA256:"},
		{name: "not recorded, known_hosts lists own key",
			wantMsg: "but is not a recorded node; every node holds that key, so it does not show which machine this is; no login was attempted"},
		{name: "not recorded, pinned cluster key", pin: "cluster"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, f, o := setup(t)
			prepareOK(t, c, f)
			setupOK(f, t)
			serveNoded(t, c, o.NodeDaemonPort)
			keys := clusterKeys(t, c)
			serverKeys(t, f, keys)
			if tc.recorded {
				if _, err := c.RecordNode(cluster.Node{Name: "127.0.0.1", PrimaryIP: "127.0.0.1", RootPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeNodeRootKey0000000000000000000000000000 root@node"}); err != nil {
					t.Fatal(err)
				}
			}
			switch tc.pin {
			case "node":
				o.Pins = map[string][]string{"": {nodeKey.Fingerprint()}}
			case "cluster":
				o.Pins = map[string][]string{"127.0.0.1": {keys[0].Fingerprint()}}
			}
			r := Join(context.Background(), o, "127.0.0.1")
			if tc.wantMsg == "" {
				if !r.OK {
					t.Fatalf("result: %+v", r)
				}
				if r.HostKey != keys[0].Fingerprint() || r.VerifiedHostKey != "" {
					t.Errorf("host_key %s, verified_host_key %q; want %s only", r.HostKey, r.VerifiedHostKey, keys[0].Fingerprint())
				}
				return
			}
			if r.OK || r.Step != StepHostKey || !strings.Contains(r.Message, tc.wantMsg) {
				t.Fatalf("result: ok=%v step=%s message=%q, want %q", r.OK, r.Step, r.Message, tc.wantMsg)
			}
			if tc.wantHint != "" && !strings.Contains(strings.Join(r.Hints, "\n"), tc.wantHint) {
				t.Errorf("hints %q lack %q", r.Hints, tc.wantHint)
			}
			if _, err := os.Stat(filepath.Join(f.Dir, "prepare.json")); err == nil {
				t.Error("prepare-node-join ran after a refused host key")
			}
		})
	}
}

// A node whose node-side programs change nothing but that the master had
// not recorded (set up by hand from --print-payload) is recorded, and the
// result says so; a second run records nothing.
func TestJoinRecordsPreparedNode(t *testing.T) {
	c, f, o := setup(t)
	prepareOK(t, c, f)
	f.Program(t, "node-daemon-setup", "cat >/dev/null\necho '{\"program\":\"node-daemon-setup\",\"changed\":false,\"dry_run\":false,\"files\":[],\"restarted\":[]}'\n")
	script, _ := os.ReadFile(filepath.Join(f.Dir, "bin", "prepare-node-join"))
	f.Write(t, filepath.Join("bin", "prepare-node-join"), strings.Replace(string(script), `"changed":true`, `"changed":false`, 1))
	serveNoded(t, c, o.NodeDaemonPort)
	r := Join(context.Background(), o, "127.0.0.1")
	if !r.OK || r.Changed || !r.Recorded {
		t.Fatalf("first run: ok %v changed %v recorded %v: %s", r.OK, r.Changed, r.Recorded, r.Message)
	}
	serverKeys(t, f, clusterKeys(t, c))
	r = Join(context.Background(), o, "127.0.0.1")
	if !r.OK || r.Changed || r.Recorded {
		t.Fatalf("second run: ok %v changed %v recorded %v: %s", r.OK, r.Changed, r.Recorded, r.Message)
	}
}

// The hint after the node daemon did not answer says what the master has
// (the node recorded before, or not) and which port the node was given.
func TestJoinNodedHint(t *testing.T) {
	for _, recorded := range []bool{false, true} {
		c, f, o := setup(t)
		prepareOK(t, c, f)
		setupOK(f, t)
		o.NodeDaemonTimeout = 300 * time.Millisecond
		want := "the node is configured but not recorded on the master"
		if recorded {
			if _, err := c.RecordNode(cluster.Node{Name: "127.0.0.1", PrimaryIP: "127.0.0.1"}); err != nil {
				t.Fatal(err)
			}
			want = "the node was recorded on the master by an earlier run and stays so; its node daemon does not answer now"
		}
		r := Join(context.Background(), o, "127.0.0.1")
		if r.OK || r.Step != StepNoded || len(r.Hints) != 2 || r.Hints[0] != want {
			t.Fatalf("recorded %v: %+v", recorded, r)
		}
		if port := fmt.Sprintf("the master expects the node daemon on port %d (", o.NodeDaemonPort); !strings.HasPrefix(r.Hints[1], port) {
			t.Errorf("hint %q, want it to start %q", r.Hints[1], port)
		}
		b, _ := os.ReadFile(filepath.Join(f.Dir, "setup.json"))
		if !strings.Contains(string(b), fmt.Sprintf(`"node_daemon_port":%d`, o.NodeDaemonPort)) {
			t.Errorf("node-daemon-setup's document lacks the port: %.300s", b)
		}
	}
}

// Each kind of connect failure gets the hint that fits it.
func TestJoinConnectHints(t *testing.T) {
	for _, tc := range []struct{ mode, want string }{
		{"unreachable", "127.0.0.1 answers but nothing listens on the SSH port: check that sshd runs on the node and that the port (--ssh-port) is right"},
		{"noroute", "the master has no route to 127.0.0.1: check the node's address and the master's network"},
		{"timedout", "no answer from 127.0.0.1 within --connect-timeout 7s: check that the node is up, its address, and that no firewall drops the SSH port; raise --connect-timeout on a slow network"},
		{"authfail", "node-add logs in with the keys the master's ssh uses"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			_, f, o := setup(t)
			f.Write(t, "mode", tc.mode)
			o.SSH.ConnectTimeout = 7 * time.Second
			r := Join(context.Background(), o, "127.0.0.1")
			if r.OK || r.Step != StepConnect || len(r.Hints) != 1 || !strings.HasPrefix(r.Hints[0], tc.want) {
				t.Fatalf("step %s hints %q, want %q", r.Step, r.Hints, tc.want)
			}
		})
	}
}

// A rolled-back node-side program's own words are relayed once: its error
// line in the message, its hint as a hint, and no second "put back".
func TestJoinRelaysRemoteHintsOnce(t *testing.T) {
	c, f, o := setup(t)
	prepareOK(t, c, f)
	f.Program(t, "node-daemon-setup", `cat >/dev/null
echo 'node-daemon-setup: error: restarting node daemon: exit status 1; the previous files were put back' >&2
echo 'node-daemon-setup: hint: nothing on the node changed; fix the cause and run again' >&2
exit 1
`)
	r := Join(context.Background(), o, "127.0.0.1")
	wantMsg := "node-daemon-setup exited 1 (failed while applying): node-daemon-setup: error: restarting node daemon: exit status 1; the previous files were put back"
	if r.Message != wantMsg {
		t.Errorf("message %q\nwant    %q", r.Message, wantMsg)
	}
	if want := []string{"node-daemon-setup: nothing on the node changed; fix the cause and run again"}; strings.Join(r.Hints, "|") != strings.Join(want, "|") {
		t.Errorf("hints %q, want %q", r.Hints, want)
	}
}

func TestJoinFailures(t *testing.T) {
	for _, tc := range []struct {
		name       string
		prepare    string // script; "" = prepareOK
		setup      string // script; "" = setupOK
		noded      bool
		knownHosts string // "-" keeps the default
		wantStep   string
		wantStatus int
		wantMsg    string
		wantHint   string
	}{
		{name: "host key unknown", knownHosts: "", wantStep: StepHostKey, wantStatus: -1,
			wantMsg:  "host key of 127.0.0.1 is unknown: fingerprint SHA256:",
			wantHint: "--accept-new-host-key"},
		{name: "remote exit 3", prepare: "cat >/dev/null\necho 'prepare-node-join: error: invalid input: /cluster_name: \"c1.example.org\" does not match this node'\"'\"'s cluster \"c9\"' >&2\necho 'prepare-node-join: hint: run node-cleanup first' >&2\nexit 3\n",
			wantStep: StepPrepare, wantStatus: 3,
			wantMsg:  `prepare-node-join exited 3 (input rejected): prepare-node-join: error: invalid input: /cluster_name: "c1.example.org" does not match this node's cluster "c9"; no changes were made on the node`,
			wantHint: "run node-cleanup first"},
		{name: "remote exit 1", setup: "cat >/dev/null\necho 'some log line' >&2\necho 'node-daemon-setup: error: writing /var/lib/ganeti/hmac.key: no space left on device' >&2\nexit 1\n",
			wantStep: StepSetup, wantStatus: 1,
			wantMsg: "node-daemon-setup exited 1 (failed while applying): node-daemon-setup: error: writing /var/lib/ganeti/hmac.key: no space left on device; the node was put back as it was"},
		{name: "garbage on stdout", prepare: "cat >/dev/null\necho 'Welcome to node1!'\n",
			wantStep: StepPrepare, wantStatus: -1, wantMsg: "prepare-node-join printed no valid result on standard output: reading the result: invalid character"},
		{name: "program missing", setup: "cat >/dev/null\necho 'sh: 1: node-daemon-setup: not found' >&2\nexit 127\n",
			wantStep: StepSetup, wantStatus: 127, wantMsg: "node-daemon-setup exited 127 (not found or not executable): sh: 1: node-daemon-setup: not found",
			wantHint: "--setup-program"},
		{name: "node keeps its own host key", prepare: "cat >/dev/null\necho '{\"program\":\"prepare-node-join\",\"changed\":true,\"dry_run\":false,\"files\":[],\"restarted\":[],\"root_public_key\":\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeNodeRootKey0000000000000000000000000000\",\"host_key_fingerprints\":{\"ed25519\":\"SHA256:other\"}}'\n",
			wantStep: StepPrepare, wantStatus: -1, wantMsg: `the node reports ed25519 host key "SHA256:other", not the cluster's SHA256:`},
		{name: "noded does not answer", noded: false, wantStep: StepNoded, wantStatus: -1,
			wantMsg: "the node daemon on 127.0.0.1:", wantHint: "noded.log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, f, o := setup(t)
			prepareOK(t, c, f)
			setupOK(f, t)
			if tc.prepare != "" {
				f.Program(t, "prepare-node-join", tc.prepare)
			}
			if tc.setup != "" {
				f.Program(t, "node-daemon-setup", tc.setup)
			}
			if tc.knownHosts != "-" && tc.name == "host key unknown" {
				f.Write(t, "user_known_hosts", tc.knownHosts)
			}
			o.NodeDaemonTimeout = 300 * time.Millisecond
			r := Join(context.Background(), o, "127.0.0.1")
			if r.OK || r.Step != tc.wantStep || !strings.Contains(r.Message, tc.wantMsg) {
				t.Fatalf("result: ok=%v step=%s message=%q\nwant step %s message containing %q", r.OK, r.Step, r.Message, tc.wantStep, tc.wantMsg)
			}
			status := -1
			if r.ExitStatus != nil {
				status = *r.ExitStatus
			}
			if status != tc.wantStatus {
				t.Errorf("exit status %d, want %d", status, tc.wantStatus)
			}
			if tc.wantHint != "" && !strings.Contains(strings.Join(r.Hints, "\n"), tc.wantHint) {
				t.Errorf("hints %q lack %q", r.Hints, tc.wantHint)
			}
			if f.Connections() != 1 {
				t.Errorf("connections = %d, want 1", f.Connections())
			}
			if pk, _ := c.PublicKeys(); len(pk) != 1 {
				t.Errorf("a failed node was recorded: %v", pk)
			}
		})
	}
}
