package join

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
