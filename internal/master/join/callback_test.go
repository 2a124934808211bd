package join

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodejoin/nodejoin/internal/fakessh"
	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"golang.org/x/crypto/ssh"
)

// otherKey is a fresh ed25519 host key: another machine's.
func otherKey(t *testing.T) fakessh.HostKey {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return fakessh.HostKey{Type: k.Type(), Base64: base64.StdEncoding.EncodeToString(k.Marshal())}
}

// tunnelNode is a node behind a callback: its name resolves to 127.0.0.2,
// where nothing listens, and its tunnel is on the master's localhost.
// The test's node daemon listens on 127.0.0.1 only, as the node's own
// daemon does for the node itself, so it answers only through the
// connection's forward.
const tunnelNode = "127.0.0.2"

const tunnelPort = 22017

func TestJoinThroughTunnel(t *testing.T) {
	c, f, o := setup(t)
	prepareOK(t, c, f)
	setupOK(f, t)
	serveNoded(t, c, o.NodeDaemonPort)
	// Known under the node's name only; a stale entry of another machine
	// under the tunnel's address is neither trusted nor in the way.
	f.Write(t, "user_known_hosts", tunnelNode+" "+nodeKey.Type+" "+nodeKey.Base64+"\n[localhost]:22017 "+clusterKeys(t, c)[0].Type+" "+clusterKeys(t, c)[0].Base64+"\n")
	o.Tunnels = map[string]int{tunnelNode: tunnelPort}
	r := Join(context.Background(), o, tunnelNode)
	if !r.OK {
		t.Fatalf("result: %+v", r)
	}
	if r.Tunnel != "localhost:22017" || r.PrimaryIP != tunnelNode || r.VerifiedHostKey != nodeKey.Fingerprint() {
		t.Errorf("tunnel %q primary ip %q verified %q", r.Tunnel, r.PrimaryIP, r.VerifiedHostKey)
	}
	b, _ := os.ReadFile(filepath.Join(f.Dir, "connections"))
	if string(b) != tunnelNode+" via localhost\n" || r.Connections != 1 {
		t.Errorf("connections %q (reported %d), want one to %s via localhost", b, r.Connections, tunnelNode)
	}
	if !strings.Contains(f.Cmdlines(), "-O forward -L ") {
		t.Errorf("the node daemon was not asked through the connection:\n%s", f.Cmdlines())
	}
	if ok, _ := c.Recorded(tunnelNode); !ok {
		t.Error("the node is not recorded")
	}

	// The push after the join: the node has the master's ssconf from its
	// document, so no second connection; once the master's ssconf
	// changes, one through the tunnel.
	o.TunnelSsconf = TunnelSsconf([]*Result{r})
	if res, err := PushSsconf(context.Background(), o, 1); err != nil || len(res) != 1 || res[0].Error != "" || res[0].Changed {
		t.Fatalf("push after the join: %+v, %v", res, err)
	}
	if f.Connections() != 1 {
		t.Errorf("the push after the join opened a connection")
	}
	os.WriteFile(filepath.Join(c.Config.Path(c.Config.DataDir), "ssconf_cluster_tags"), []byte("pushed\n"), 0o444)
	// The test's daemon lists no master certificate: its refusal shows
	// that the push reached it, through the tunnel.
	if res, err := PushSsconf(context.Background(), o, 1); err != nil || len(res) != 1 || !strings.Contains(res[0].Error, "PUT /ssconf: 403 Forbidden") {
		t.Fatalf("push of a changed ssconf: %+v, %v", res, err)
	}
	if f.Connections() != 2 {
		t.Errorf("connections after a push of a changed ssconf: %d, want 2", f.Connections())
	}

	// Without its tunnel the master asks 127.0.0.2, where nothing answers.
	o.Tunnels, o.NodeDaemonTimeout = nil, 500_000_000
	f.Write(t, "user_known_hosts", tunnelNode+" "+nodeKey.Type+" "+nodeKey.Base64+"\n")
	if r := Join(context.Background(), o, tunnelNode); r.OK || r.Step != StepNoded {
		t.Errorf("reached directly: %+v, want a failure at %s", r, StepNoded)
	}
}

// A tunnel that is down, a listener that is not the node's sshd, and a
// tunnel whose far end does not answer are each named, before any login.
func TestJoinThroughDeadTunnel(t *testing.T) {
	for _, tc := range []struct {
		name, mode, step, msg, hint string
		otherKey, unknown           bool
	}{
		{name: "nothing listens", mode: "unreachable", step: StepConnect,
			msg:  "the callback tunnel of 127.0.0.2 is down: nothing listens on localhost:22017, the port it was granted (node unreachable: ssh: connect to host localhost port 22017: Connection refused); no login was attempted",
			hint: "check callback-setup on 127.0.0.2: `systemctl status nodejoin-callback`"},
		{name: "unknown key", mode: "ok", unknown: true, step: StepHostKey,
			msg:  "through its callback tunnel on localhost:22017: host key of 127.0.0.2 is unknown: fingerprint " + nodeKey.Fingerprint() + "; no login was attempted",
			hint: "or pass --accept-new-host-key to trust the key on first use"},
		{name: "another machine", mode: "ok", otherKey: true, step: StepHostKey,
			msg:  "what answers on localhost:22017 is not 127.0.0.2: host key of 127.0.0.2 has changed: known " + nodeKey.Fingerprint() + ", offered SHA256:",
			hint: "another process, or another node's tunnel, may hold the port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, f, o := setup(t)
			prepareOK(t, c, f)
			setupOK(f, t)
			f.Write(t, "mode", tc.mode)
			f.Write(t, "user_known_hosts", tunnelNode+" "+nodeKey.Type+" "+nodeKey.Base64+"\n")
			if tc.unknown {
				f.Write(t, "user_known_hosts", "")
			}
			if tc.otherKey {
				serverKeys(t, f, []fakessh.HostKey{otherKey(t)})
			}
			o.Tunnels = map[string]int{tunnelNode: tunnelPort}
			r := Join(context.Background(), o, tunnelNode)
			if r.OK || r.Step != tc.step || !strings.HasPrefix(r.Message, tc.msg) {
				t.Fatalf("step %s message %q, want %s %q", r.Step, r.Message, tc.step, tc.msg)
			}
			if !strings.Contains(strings.Join(r.Hints, "\n"), tc.hint) {
				t.Errorf("hints %q lack %q", r.Hints, tc.hint)
			}
			if _, err := os.Stat(filepath.Join(f.Dir, "prepare.json")); err == nil {
				t.Error("prepare-node-join ran")
			}
		})
	}
}

// The ssconf push reaches a recorded node behind a callback through its
// tunnel, with the cluster's host key checked under its name.
func TestPushSsconfThroughTunnel(t *testing.T) {
	c, f, o := setup(t)
	if _, err := c.RecordNode(cluster.Node{Name: tunnelNode, PrimaryIP: tunnelNode}); err != nil {
		t.Fatal(err)
	}
	doc, err := c.DaemonSetupDoc(tunnelNode, tunnelNode)
	if err != nil {
		t.Fatal(err)
	}
	root := serveNodedWith(t, c, o.NodeDaemonPort, doc.Ssconf)
	serverKeys(t, f, clusterKeys(t, c))
	f.Write(t, "user_known_hosts", "")
	os.WriteFile(filepath.Join(c.Config.Path(c.Config.DataDir), "ssconf_cluster_tags"), []byte("pushed\n"), 0o444)
	o.Tunnels = map[string]int{tunnelNode: tunnelPort}
	res, err := PushSsconf(context.Background(), o, 1)
	if err != nil || len(res) != 1 || res[0].Error != "" || !res[0].Changed {
		t.Fatalf("push: %+v, %v", res, err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "var/lib/ganeti/ssconf_cluster_tags")); string(b) != "pushed\n" {
		t.Errorf("the node's ssconf_cluster_tags = %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(f.Dir, "connections")); string(b) != tunnelNode+" via localhost\n" {
		t.Errorf("connections %q", b)
	}

	f.Write(t, "mode", "unreachable")
	res, _ = PushSsconf(context.Background(), o, 1)
	if want := "updating ssconf through the node daemon: the callback tunnel of 127.0.0.2 is down: nothing listens on localhost:22017"; len(res) != 1 || !strings.HasPrefix(res[0].Error, want) {
		t.Errorf("push through a dead tunnel: %+v, want %q", res, want)
	}
}
