package scenarios

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/qa/clusterlab"
	"github.com/nodejoin/nodejoin/qa/harness"
)

// serveJoinService starts join-service serve on h (its cluster made
// first) with args (default: --advertise h's address) and waits until its
// admin socket answers; the daemon stops with the test, or when stop is
// called, which kills it (SIGKILL) and waits.
func serveJoinService(t *testing.T, ctx context.Context, h *harness.Host, args ...string) (stop func()) {
	t.Helper()
	if len(args) == 0 {
		args = []string{"--advertise", h.IP().String()}
	}
	sctx, cancel := context.WithCancel(ctx)
	cmd := h.Command(sctx, append([]string{"join-service", "serve", "--listen", ":1816"}, args...)...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("join-service serve on %s: %v", h.Name, err)
	}
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); _ = cmd.Wait() }) }
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("join-service serve on %s:\n%s", h.Name, out.String())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if r := clusterlab.Run(ctx, h, nil, "join-service", "slot", "list"); r.OK() {
			return stop
		}
		if time.Now().After(deadline) {
			t.Fatalf("join-service on %s does not answer:\n%s", h.Name, out.String())
		}
	}
}

// slotAdd issues a slot on h and returns slot add's answer.
func slotAdd(t *testing.T, ctx context.Context, h *harness.Host, doc string) (uuid, bootParam string) {
	t.Helper()
	r := must(t, "slot add", clusterlab.Run(ctx, h, []byte(doc), "join-service", "slot", "add"))
	var a struct {
		UUID      string `json:"uuid"`
		BootParam string `json:"boot_param"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &a); err != nil {
		t.Fatalf("slot add: %v\n%s", err, r.Stdout)
	}
	return a.UUID, a.BootParam
}

// writeRootFile writes a root-only file into h.
func writeRootFile(t *testing.T, h *harness.Host, p, text string) {
	t.Helper()
	if err := os.WriteFile(h.Path(p), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Pull mode on namespace hosts: a node joins by boot parameter and its
// noded answers the master over TLS; the spent secret replayed from
// another host is refused; a host that answers at another address with
// another cluster's certificate (a MITM) is refused by the pin, and is
// sent nothing.
func TestPullJoinByBootParam(t *testing.T) {
	l, ctx := newLab(t, 3)
	node, other, mitm := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	serveJoinService(t, ctx, l.Master)

	uuid, bootParam := slotAdd(t, ctx, l.Master, `{"node_name": "`+node.Name+`", "ttl": "10m"}`)
	cmdline := "BOOT_IMAGE=/vmlinuz ro " + bootParam + " console=ttyS0\n"
	writeRootFile(t, node, "/root/cmdline", cmdline)
	r := must(t, "node-join", clusterlab.Run(ctx, node, nil, "node-join", "--boot-param", "--cmdline", "/root/cmdline", "--timeout", "1m"))
	t.Logf("node-join took %v:\n%s", r.Took, r.Stderr)
	var res struct {
		UUID, Status string
		Recorded     bool
	}
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil || res.UUID != uuid || res.Status != joinapi.StatusJoined || !res.Recorded {
		t.Fatalf("node-join's result %+v (%v):\n%s", res, err, r.Stdout)
	}
	if _, secret, _ := strings.Cut(strings.TrimPrefix(bootParam, joinapi.BootParamKey+"="+uuid+":"), ":"); secret == "" ||
		strings.Contains(r.Stdout+r.Stderr, strings.Split(secret, ":")[0]) {
		t.Error("node-join's output holds the secret")
	}
	// The master recorded the node; its noded answers the master over
	// mutual TLS with the cluster certificate.
	if ss, err := clusterlab.Ssconf(l.Master); err != nil || !strings.Contains(ss["node_list"], node.Name) {
		t.Errorf("the master's ssconf_node_list %q (%v) lacks %s", ss["node_list"], err, node.Name)
	}
	if v, err := l.NodedVersion(ctx, node); err != nil {
		t.Errorf("%s's noded: %v", node.Name, err)
	} else {
		t.Logf("%s's noded: %s", node.Name, v)
	}
	// The master logs in to the node with the cluster known_hosts alias.
	if r := l.SSHAsCluster(ctx, node, "hostname"); !r.OK() || strings.TrimSpace(r.Stdout) != node.Name {
		t.Errorf("%s: ssh with the cluster known_hosts alias: %s", node.Name, r)
	}

	// The spent secret replayed from another host: refused, nothing changed.
	writeRootFile(t, other, "/root/cmdline", cmdline)
	before := treeHash(t, other)
	r = clusterlab.Run(ctx, other, nil, "node-join", "--boot-param", "--cmdline", "/root/cmdline", "--timeout", "30s")
	if r.Code != 3 || !strings.Contains(r.Stderr, "node-join: error: invalid input: fetching slot "+uuid+": the master refused: 410 spent: ") {
		t.Errorf("the replayed secret: %s", r)
	}
	if treeHash(t, other) != before {
		t.Errorf("%s: the refused replay changed files", other.Name)
	}

	// A MITM: mitm holds another cluster's certificate and serves at its own
	// address; other is given a good token whose host is mitm's.
	must(t, "cluster-init on the mitm host", clusterlab.Run(ctx, mitm, nil, "cluster-init", "--cluster-name", "evil.nodejoin.test",
		"--master-node", mitm.Name, "--master-ip", mitm.IP().String(), "--force"))
	serveJoinService(t, ctx, mitm)
	uuid2, bootParam2 := slotAdd(t, ctx, l.Master, `{"node_name": "`+other.Name+`"}`)
	tok, err := joinapi.ParseToken(strings.TrimPrefix(bootParam2, joinapi.BootParamKey+"="))
	if err != nil {
		t.Fatal(err)
	}
	tok.Host, tok.Port = mitm.IP().String(), 0
	writeRootFile(t, other, "/root/join.token", tok.Text()+"\n")
	before = treeHash(t, other)
	r = clusterlab.Run(ctx, other, nil, "node-join", "--token-file", "/root/join.token", "--timeout", "30s")
	if r.Code != 3 || !strings.Contains(r.Stderr, ": the server's certificate matches no pin: it presents sha256:") ||
		!strings.Contains(r.Stderr, "nothing was sent to it") {
		t.Errorf("node-join against the mitm: %s", r)
	}
	if strings.Contains(r.Stdout+r.Stderr, tok.Secret) {
		t.Error("node-join's output holds the secret")
	}
	audit, err := os.ReadFile(mitm.Path("/var/log/nodejoin/join-service.audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(audit), `"event":"fetch"`) || strings.Contains(string(audit), uuid2) {
		t.Errorf("the mitm's join-service saw a request:\n%s", audit)
	}
	if treeHash(t, other) != before {
		t.Errorf("%s: the refused join changed files", other.Name)
	}
	// The real slot is untouched: other can still join with it.
	r = must(t, "slot show", clusterlab.Run(ctx, l.Master, nil, "join-service", "slot", "show", uuid2))
	if !strings.Contains(r.Stdout, `"used": 0`) {
		t.Errorf("the slot after the mitm's refusal:\n%s", r.Stdout)
	}
}

// 50 machines boot at once with a dynamic pool's token for 40 slots: 40
// distinct joins, each recorded by the master, and 10 clean refusals
// (no free slot, exit 3) that change nothing on their machines.
func TestPullDynamicRace(t *testing.T) {
	const machines, slots = 50, 40
	harness.Require(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	t.Cleanup(cancel)
	l := clusterlab.New(t, harness.Options{Nodes: machines, ShareRSAHostKey: true})
	must(t, "cluster-init", l.Init(ctx))
	serveJoinService(t, ctx, l.Master)

	r := must(t, "slot add", clusterlab.Run(ctx, l.Master, []byte(`{"dynamic": true}`), "join-service", "slot", "add"))
	var pool struct {
		Secret    string `json:"secret"`
		BootParam string `json:"boot_param"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &pool); err != nil {
		t.Fatal(err)
	}
	more, _ := json.Marshal(map[string]any{"dynamic": true, "secret": pool.Secret})
	for i := 1; i < slots; i++ {
		must(t, "slot add", clusterlab.Run(ctx, l.Master, more, "join-service", "slot", "add"))
	}
	tok, err := joinapi.ParseToken(strings.TrimPrefix(pool.BootParam, joinapi.BootParamKey+"="))
	if err != nil {
		t.Fatal(err)
	}
	tok.UUID = joinapi.DynamicUUID
	before := map[string]string{}
	for _, n := range l.Nodes {
		writeRootFile(t, n, "/root/join.token", tok.Text()+"\n")
		before[n.Name] = treeHash(t, n)
	}

	results := make([]clusterlab.Result, machines)
	done := make(chan int)
	for i, n := range l.Nodes {
		go func() {
			results[i] = clusterlab.Run(ctx, n, nil, "node-join", "--token-file", "/root/join.token", "--timeout", "3m")
			done <- i
		}()
	}
	for range l.Nodes {
		<-done
	}
	uuids := map[string]string{}
	var refused int
	for i, r := range results {
		n := l.Nodes[i]
		switch r.Code {
		case 0:
			var res struct {
				UUID     string
				NodeName string `json:"node_name"`
				Recorded bool
			}
			if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil || !res.Recorded || res.NodeName != n.Name {
				t.Errorf("%s: %+v %v", n.Name, res, err)
			}
			if prev, ok := uuids[res.UUID]; ok {
				t.Errorf("%s and %s both got slot %s", prev, n.Name, res.UUID)
			}
			uuids[res.UUID] = n.Name
		case 3:
			refused++
			if !strings.Contains(r.Stderr, "the master refused: 503 no_free_slot: ") {
				t.Errorf("%s: refused otherwise: %s", n.Name, r)
			}
			if treeHash(t, n) != before[n.Name] {
				t.Errorf("%s: the refused join changed files", n.Name)
			}
		default:
			t.Errorf("%s: %s", n.Name, r)
		}
	}
	if len(uuids) != slots || refused != machines-slots {
		t.Errorf("%d joins and %d refusals, want %d and %d", len(uuids), refused, slots, machines-slots)
	}
	ss, err := clusterlab.Ssconf(l.Master)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range uuids {
		if !strings.Contains("\n"+ss["node_list"]+"\n", "\n"+name+"\n") {
			t.Errorf("the master did not record %s", name)
		}
	}
	if got := len(strings.Fields(ss["node_list"])); got != slots+1 {
		t.Errorf("the master's node list has %d names, want %d and the master", got, slots)
	}
}
