package scenarios

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/qa/clusterlab"
)

// Scenario: render-cloud-config's callback option on a node behind a
// firewall (the callback lab: the master cannot open a connection to it).
// The master makes a callback key pair and grants it a port; the user-data
// carries callback-setup's document with that key; Debian's cloud-init's
// stages run callback-setup and node-join; the node joins in pull mode, its
// callback key is in place (root's, 0600), the staged document is gone and
// no file others can read holds the key; the tunnel's supervisor then
// brings the master to the node's sshd through the granted port.
func TestCloudInitCallback(t *testing.T) {
	for _, p := range []string{"cloud-init", "ssh-keygen"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("qa: needs %s", p)
		}
	}
	l := newCallbackLab(t)
	ctx, node := l.ctx, l.node
	must(t, "cluster-init", l.Init(ctx))
	serveJoinService(t, ctx, l.Master)
	uuid, bootParam := slotAdd(t, ctx, l.Master, `{"node_name": "`+node.Name+`", "ttl": "10m"}`)

	must(t, "ssh-keygen", clusterlab.Run(ctx, l.Master, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "callback:"+node.Name, "-f", "/root/callback-key"))
	priv := readFile(t, l.Master.Path("/root/callback-key"))
	pub := strings.TrimSpace(readFile(t, l.Master.Path("/root/callback-key.pub")))
	port := l.grant(t, node.Name, pub)
	var keys []string
	for _, k := range []string{"ed25519", "rsa"} {
		keys = append(keys, strings.TrimSpace(readFile(t, l.Master.Path("/etc/ssh/ssh_host_"+k+"_key.pub"))))
	}
	in, _ := json.Marshal(map[string]any{"token": bootParam, "install": map[string]string{"from": "image"}, "timeout": "2m",
		"callback": map[string]any{"master_host": l.Master.IP().String(), "master_host_keys": keys, "callback_user": cbUser,
			"remote_port": port, "key": map[string]string{"private": priv, "public": pub},
			"server_alive_interval": 1, "server_alive_count_max": 3}})
	r := must(t, "render-cloud-config", clusterlab.Run(ctx, l.Master, in, "render-cloud-config"))
	if !strings.Contains(r.Stderr, "render-cloud-config: warning: callback: the callback key's private half travels in the user-data") {
		t.Errorf("render-cloud-config's warnings:\n%s", r.Stderr)
	}
	seedNoCloud(t, ctx, node, []byte(r.Stdout))
	t.Logf("%s", strings.Join(runStages(t, ctx, node), "\n"))
	checkResult(t, ctx, node)

	root := fmt.Sprintf("/proc/%d/root", node.InitPID())
	if _, err := os.Lstat(root + "/run/nodejoin-cloud"); !os.IsNotExist(err) {
		t.Errorf("/run/nodejoin-cloud is still there after the run (%v)", err)
	}
	if got, _ := clusterlab.Stat(ctx, node, "/etc/nodejoin/callback/id_ed25519"); got["/etc/nodejoin/callback/id_ed25519"] != "600 root:root" {
		t.Errorf("callback key: %v, want 600 root:root", got)
	}
	if got := readFile(t, node.Path("/etc/nodejoin/callback/id_ed25519")); strings.TrimSpace(got) != strings.TrimSpace(priv) {
		t.Error("the node's callback key is not the granted one")
	}
	keyLine := strings.Split(strings.TrimSpace(priv), "\n")[1]
	for _, f := range worldReadableWith(t, node, keyLine) {
		t.Errorf("%s: readable by others and holds the callback key", f)
	}
	show := must(t, "slot show", clusterlab.Run(ctx, l.Master, nil, "join-service", "slot", "show", uuid))
	if !strings.Contains(show.Stdout, `"status": "`+joinapi.StatusJoined+`"`) {
		t.Errorf("slot after the first boot:\n%s", show.Stdout)
	}

	// The master pins node1's host keys (after the join, the cluster's)
	// under node1's name, never under localhost:PORT.
	kh, err := node.KnownHosts()
	if err != nil {
		t.Fatal(err)
	}
	var khb strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(string(kh)), "\n") {
		khb.WriteString(node.Name + " " + strings.SplitN(line, " ", 2)[1] + "\n")
	}
	if err := os.WriteFile(l.Master.Path("/root/.ssh/known_hosts.callback"), []byte(khb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	// No systemd in a lab host: the node's init would start the supervisor.
	l.startSupervisor(t)
	l.waitTunnel(t, port, 30*time.Second)
}
