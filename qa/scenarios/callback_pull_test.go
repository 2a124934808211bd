package scenarios

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/qa/clusterlab"
)

// TestCallbackPullJoin: node1 drops every connection it did not open and
// has nothing but its token. node-join --callback auto hears from
// join-service that the master cannot reach it, makes its callback key,
// gets a grant with the slot's secret, pins the master's host keys and
// reports joined; with callback-setup --run started (as its init would),
// the tunnel comes up and the master logs in to node1 through it with
// node-add --print-ssh-command's command, node1's host key checked under
// its name. Another callback key for the slot is refused 409, another
// slot's secret gets nothing for it (401), and the master's sshd
// configuration is the one callback-grant --enable left.
func TestCallbackPullJoin(t *testing.T) {
	l := newCallbackLab(t)
	if r := l.Init(l.ctx); !r.OK() {
		t.Fatalf("cluster-init: %s", r)
	}
	must(t, "callback-grant --enable", clusterlab.Run(l.ctx, l.Master, nil, "callback-grant", "--enable",
		"--client-alive-interval", "1", "--client-alive-count-max", "3"))
	sshdConf := readFile(t, l.Master.Path("/etc/ssh/sshd_config.d/nodejoin-callback.conf"))
	serveJoinService(t, l.ctx, l.Master, "--advertise", l.Master.IP().String(), "--callback")

	uuid, bootParam := slotAdd(t, l.ctx, l.Master, `{"node_name": "`+l.node.Name+`", "ttl": "10m"}`)
	tok, err := joinapi.ParseToken(strings.TrimPrefix(bootParam, joinapi.BootParamKey+"="))
	if err != nil {
		t.Fatal(err)
	}
	writeRootFile(t, l.node, "/root/join.token", tok.Text()+"\n")
	r := must(t, "node-join --callback auto", clusterlab.Run(l.ctx, l.node, nil, "node-join", "--token-file", "/root/join.token",
		"--callback", "auto", "--timeout", "1m"))
	t.Logf("node-join took %v:\n%s", r.Took, r.Stderr)
	var res struct {
		Status   string
		Recorded bool
		Callback *struct {
			RemotePort int    `json:"remote_port"`
			User       string `json:"callback_user"`
			Supervisor string
		}
	}
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil || res.Status != joinapi.StatusJoined || !res.Recorded ||
		res.Callback == nil || res.Callback.RemotePort == 0 || res.Callback.User != cbUser || res.Callback.Supervisor != "callback-setup --run" {
		t.Fatalf("node-join's result %+v (%v):\n%s", res, err, r.Stdout)
	}
	if strings.Contains(r.Stdout+r.Stderr, tok.Secret) {
		t.Error("node-join's output holds the secret")
	}
	port := res.Callback.RemotePort
	if got := readFile(t, l.Master.Path("/etc/ssh/sshd_config.d/nodejoin-callback.conf")); got != sshdConf {
		t.Errorf("the grant changed sshd's block:\n%s", got)
	}
	audit := readFile(t, l.Master.Path("/var/log/nodejoin/join-service.audit.log"))
	if !strings.Contains(audit, `"event":"callback","slot":"`+uuid+`"`) || strings.Contains(audit, tok.Secret) {
		t.Errorf("audit log:\n%s", audit)
	}

	sup := l.startSupervisor(t)
	l.waitListening(t, port, true, 30*time.Second)
	r = must(t, "node-add --print-ssh-command", l.NodeAdd(l.ctx, "--print-ssh-command", l.node.Name))
	if !strings.Contains(r.Stdout, "-o HostName=localhost -o ProxyCommand=none -p "+strconv.Itoa(port)+" -l root "+l.node.Name) {
		t.Errorf("--print-ssh-command: %s", r.Stdout)
	}
	if r := clusterlab.Run(l.ctx, l.Master, nil, "sh", "-c", strings.TrimSpace(r.Stdout)+" hostname"); !r.OK() || strings.TrimSpace(r.Stdout) != l.node.Name {
		t.Errorf("the printed ssh command through the tunnel: %s", r)
	}
	checkJoinedBehindCallback(t, l)

	// The slot's secret with another key, and another slot's secret
	// for this slot, from node1 (curl reads the header from a file).
	_, bootParam2 := slotAdd(t, l.ctx, l.Master, `{"node_name": "node2.nodejoin.test"}`)
	tok2, err := joinapi.ParseToken(strings.TrimPrefix(bootParam2, joinapi.BootParamKey+"="))
	if err != nil {
		t.Fatal(err)
	}
	writeRootFile(t, l.node, "/root/hdr1", "Authorization: Bearer "+tok.Secret+"\n")
	writeRootFile(t, l.node, "/root/hdr2", "Authorization: Bearer "+tok2.Secret+"\n")
	l.inNode(t, "ssh-keygen -q -t ed25519 -N '' -C other -f /root/other")
	own := strings.TrimSpace(readFile(t, l.node.Path("/etc/nodejoin/callback/id_ed25519.pub")))
	for _, tc := range []struct{ hdr, key, want string }{
		{"/root/hdr1", "$(cat /root/other.pub)", "409"},
		{"/root/hdr2", own, "401"},
		{"/root/hdr1", own, "200"}, // the same key again: the same grant
	} {
		got := l.inNode(t, `curl -sk -o /root/answer -w '%{http_code}' -H @`+tc.hdr+` -d "{\"public_key\": \"`+tc.key+`\"}" `+
			`https://`+l.Master.IP().String()+`:1816/v1/slots/`+uuid+`/callback`)
		if got != tc.want {
			t.Errorf("callback request with %s: %s %s, want %s", tc.hdr, got, readFile(t, l.node.Path("/root/answer")), tc.want)
		}
		if tc.want == "200" && !strings.Contains(readFile(t, l.node.Path("/root/answer")), `"remote_port":`+strconv.Itoa(port)) {
			t.Errorf("the same key again: %s", readFile(t, l.node.Path("/root/answer")))
		}
	}
	l.stopSupervisor(t, sup, port)
}
