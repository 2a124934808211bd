package joinservice

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/master/callback"
	"github.com/nodejoin/nodejoin/internal/master/callbackstate"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
)

func newKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, _ := ssh.NewPublicKey(pub)
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
}

// enableCallback makes the fixture's master as callback-grant --enable
// does, with "true" for sshd -t and its reload.
func enableCallback(t *testing.T, root string) callback.Options {
	t.Helper()
	for p, data := range map[string]string{
		"etc/ssh/sshd_config":              "UsePAM yes\n",
		"etc/ssh/ssh_host_ed25519_key.pub": newKey(t) + " root@master\n",
		"etc/passwd":                       "root:x:0:0::/root:/bin/sh\nnodejoin-callback:x:999:999::/nonexistent:/usr/sbin/nologin\n",
		"etc/nodejoin/node.json":           `{"sshd_check_command": ["true"], "sshd_restart_command": ["true"]}`,
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := nodeconf.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	o := callback.DefaultOptions()
	if _, err := callback.Enable(context.Background(), cfg, slog.New(slog.DiscardHandler), o, false); err != nil {
		t.Fatalf("enable: %v", err)
	}
	return o
}

// TestCallbackGrant: a slot's secret gets its node one grant; the same key
// again is the same grant, another key is refused 409, another slot's
// secret gets nothing for this slot, and sshd's configuration is not
// touched by a grant.
func TestCallbackGrant(t *testing.T) {
	var root string
	f := newFixture(t, func(o *Options) { root = o.Root })
	grantOpts := enableCallback(t, root)
	grantOpts.ClientAliveInterval = 7 // not --enable's: the block in place is kept
	f.svc.o.Callback = &CallbackOptions{Grant: grantOpts}
	sshdBefore := readFile(t, filepath.Join(root, "etc/ssh/sshd_config"))

	a := f.add(t, AddRequest{NodeName: "node1.example.org"})
	b := f.add(t, AddRequest{NodeName: "node2.example.org"})
	n := f.node(t, "127.0.0.2", f.pins)
	path := "/v1/slots/" + a.UUID + "/callback"
	key := newKey(t)

	// Before a fetch and a report, nothing is granted.
	if code, body := n.call(t, http.MethodPost, path, a.Secret, joinapi.CallbackRequest{PublicKey: key}); code != http.StatusConflict {
		t.Fatalf("before the fetch: %d %s", code, body)
	}
	if code, body := n.fetch(t, a.UUID, a.Secret); code != http.StatusOK {
		t.Fatalf("fetch: %d %s", code, body)
	}
	if code, body := n.report(t, a.UUID, a.Secret, joinapi.StatusApplying); code != http.StatusOK {
		t.Fatalf("report: %d %s", code, body)
	}
	grant := func(secret, k string) (int, joinapi.CallbackAnswer, []byte) {
		code, body := n.call(t, http.MethodPost, path, secret, joinapi.CallbackRequest{PublicKey: k})
		var ans joinapi.CallbackAnswer
		if code == http.StatusOK {
			if err := json.Unmarshal(body, &ans); err != nil {
				t.Fatal(err)
			}
		}
		return code, ans, body
	}
	code, first, body := grant(a.Secret, key+" callback@node1")
	if code != http.StatusOK {
		t.Fatalf("grant: %d %s", code, body)
	}
	if first.RemotePort != grantOpts.First || first.CallbackUser != "nodejoin-callback" || first.NodeName != "node1.example.org" ||
		first.MasterPort != 22 || len(first.MasterHostKeys) != 1 || !strings.HasPrefix(first.MasterHostKeys[0], "ssh-ed25519 ") {
		t.Fatalf("grant answer %+v", first)
	}
	if code, again, body := grant(a.Secret, key); code != http.StatusOK || again.RemotePort != first.RemotePort {
		t.Fatalf("same key again: %d %s", code, body)
	}
	if code, _, body := grant(a.Secret, newKey(t)); code != http.StatusConflict || errCode(t, body) != joinapi.CodeCallbackKey {
		t.Fatalf("another key: %d %s", code, body)
	}
	// b's secret is not a's: the answer says nothing about the slot.
	if code, _, body := grant(b.Secret, newKey(t)); code != http.StatusUnauthorized {
		t.Fatalf("another slot's secret: %d %s", code, body)
	}
	if got := readFile(t, filepath.Join(root, "etc/ssh/sshd_config")); got != sshdBefore {
		t.Fatalf("sshd_config changed by a pull grant:\n%s", got)
	}
	keys := readFile(t, filepath.Join(root, "etc/ssh", callback.KeysFile))
	if want := fmt.Sprintf(`permitlisten="localhost:%d"`, first.RemotePort); !strings.Contains(keys, want) || strings.Count(keys, "\n") != 1 {
		t.Fatalf("keys file:\n%s", keys)
	}
	cfg, _ := nodeconf.Load(root)
	st, err := callbackstate.Read(cfg)
	if err != nil || len(st.Grants) != 1 || st.Grants[0].Slot != a.UUID {
		t.Fatalf("record %+v %v", st, err)
	}
	if audit := f.audit.String(); !strings.Contains(audit, `"event":"callback"`) || strings.Contains(audit, a.Secret) {
		t.Fatalf("audit:\n%s", audit)
	}
}

// TestCallbackDisabled: without serve --callback, or without the account
// set up on the master, a grant is refused 403 and nothing is written.
func TestCallbackDisabled(t *testing.T) {
	var root string
	f := newFixture(t, func(o *Options) { root = o.Root })
	a := f.add(t, AddRequest{NodeName: "node1.example.org"})
	n := f.node(t, "127.0.0.2", f.pins)
	n.fetch(t, a.UUID, a.Secret)
	n.report(t, a.UUID, a.Secret, joinapi.StatusApplying)
	path := "/v1/slots/" + a.UUID + "/callback"
	if code, body := n.call(t, http.MethodPost, path, a.Secret, joinapi.CallbackRequest{PublicKey: newKey(t)}); code != http.StatusForbidden {
		t.Fatalf("without --callback: %d %s", code, body)
	}
	f.svc.o.Callback = &CallbackOptions{Grant: callback.DefaultOptions()}
	if code, body := n.call(t, http.MethodPost, path, a.Secret, joinapi.CallbackRequest{PublicKey: newKey(t)}); code != http.StatusForbidden ||
		errCode(t, body) != joinapi.CodeCallbackOff {
		t.Fatalf("without the account: %d %s", code, body)
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/nodejoin", callbackstate.StateFile)); !os.IsNotExist(err) {
		t.Fatalf("record written: %v", err)
	}
}

// TestReachCheck: a report that asks is answered with whether the
// master could open the node's SSH port; one that does not ask, without.
func TestReachCheck(t *testing.T) {
	f := newFixture(t)
	a := f.add(t, AddRequest{NodeName: "node1.example.org", Params: map[string]string{"primary_ip": "127.0.0.3"}})
	n := f.node(t, "127.0.0.2", f.pins)
	n.fetch(t, a.UUID, a.Secret)
	code, body := n.call(t, http.MethodPost, "/v1/slots/"+a.UUID+"/status", a.Secret,
		joinapi.StatusRequest{Status: joinapi.StatusApplying, RootKey: n.rootKey, CheckReach: true})
	var ans joinapi.StatusAnswer
	if err := json.Unmarshal(body, &ans); code != http.StatusOK || err != nil || ans.Reachable == nil {
		t.Fatalf("report: %d %s", code, body)
	}
	// Nothing listens on 127.0.0.3:22 in the test, unless this machine's
	// sshd binds every address: the answer is what a dial finds.
	if want := reachable(context.Background(), "127.0.0.3", 22); *ans.Reachable != want {
		t.Fatalf("reachable %v, a dial finds %v", *ans.Reachable, want)
	}
	code, body = n.report(t, a.UUID, a.Secret, joinapi.StatusApplying)
	if code != http.StatusOK || strings.Contains(string(body), "reachable") {
		t.Fatalf("report without asking: %d %s", code, body)
	}
}
