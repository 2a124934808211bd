package join

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
)

// TestJoinAgainWhenKeysChange: the master's hmac key changes while a join
// runs (cluster-renew): the node got the old one, perhaps after the
// rotation gave it the new, so the join is made again and the node ends
// with the master's key.
func TestJoinAgainWhenKeysChange(t *testing.T) {
	c, f, o := setup(t)
	prepareOK(t, c, f)
	setupOK(f, t)
	serveNoded(t, c, o.NodeDaemonPort)
	changed := false
	o.Progress = func(node, step string) {
		if step == StepNoded && !changed {
			changed = true
			if err := os.WriteFile(c.Path(nodeconf.HMACKey), []byte("a rotated hmac key\n"), 0o600); err != nil {
				t.Error(err)
			}
		}
	}
	r := Join(context.Background(), o, "127.0.0.1")
	if !r.OK {
		t.Fatalf("result: %+v", r)
	}
	if f.Connections() != 2 || r.Connections != 2 {
		t.Errorf("connections: %d (reported %d), want 2: the join made again", f.Connections(), r.Connections)
	}
	b, _ := os.ReadFile(filepath.Join(f.Dir, "setup.json"))
	sd, err := joindoc.DecodeDaemonSetup(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if sd.HMACKey != "a rotated hmac key\n" {
		t.Error("the last node-daemon-setup did not get the master's new hmac key")
	}
}

// TestJoinKeysChangingEveryTime: a join whose keys change on every attempt
// gives up after maxStaleRejoins more, and says why.
func TestJoinKeysChangingEveryTime(t *testing.T) {
	c, f, o := setup(t)
	prepareOK(t, c, f)
	setupOK(f, t)
	serveNoded(t, c, o.NodeDaemonPort)
	n := 0
	o.Progress = func(node, step string) {
		if step == StepNoded {
			n++
			_ = os.WriteFile(c.Path(nodeconf.HMACKey), []byte(strings.Repeat("k", n)+"\n"), 0o600)
		}
	}
	r := Join(context.Background(), o, "127.0.0.1")
	if r.OK || r.Step != StepRecord || !strings.Contains(r.Message, "changed during each of 4 joins") {
		t.Fatalf("result: %+v", r)
	}
	if n != maxStaleRejoins+1 {
		t.Errorf("%d joins, want %d", n, maxStaleRejoins+1)
	}
	if rec, _ := c.Recorded("127.0.0.1"); rec {
		t.Error("recorded with stale keys")
	}
}

// TestJoinAgainWhenRefusedForAStaleCertificate: a node that cluster-renew
// gave the new cluster certificate refuses the old one that a join's
// documents, built before the master switched, carry (exit 3); the join
// is made again with the master's current documents instead of failing.
func TestJoinAgainWhenRefusedForAStaleCertificate(t *testing.T) {
	c, f, o := setup(t)
	prepareOK(t, c, f)
	okScript, err := os.ReadFile(filepath.Join(f.Dir, "bin", "prepare-node-join"))
	if err != nil {
		t.Fatal(err)
	}
	ok := strings.TrimPrefix(string(okScript), "#!/bin/sh\n")
	marker := filepath.Join(f.Dir, "refused-once")
	f.Program(t, "prepare-node-join", fmt.Sprintf("if [ ! -e %q ]; then : >%q; cat >/dev/null\n"+
		"echo 'prepare-node-join: error: invalid input: /node_daemon_certificate: the certificate does not match this node'\\''s key in /var/lib/ganeti/server.pem' >&2; exit 3; fi\n%s", marker, marker, ok))
	setupOK(f, t)
	serveNoded(t, c, o.NodeDaemonPort)
	next, err := certs.NewRenewedClusterCertificate("c1.example.org", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rotated := false
	o.Progress = func(node, step string) {
		if step == StepPrepare && !rotated {
			rotated = true
			if err := os.WriteFile(c.Path(nodeconf.ServerPEM), next, 0o600); err != nil {
				t.Error(err)
			}
		}
	}
	r := Join(context.Background(), o, "127.0.0.1")
	if !r.OK {
		t.Fatalf("result: %+v", r)
	}
	if f.Connections() != 2 {
		t.Errorf("connections: %d, want 2: the join made again", f.Connections())
	}
	b, _ := os.ReadFile(filepath.Join(f.Dir, "setup.json"))
	sd, err := joindoc.DecodeDaemonSetup(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if sd.NodeDaemonCertificate != string(next) {
		t.Error("the join made again did not send the master's current certificate")
	}
}
