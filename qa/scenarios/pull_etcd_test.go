package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/fixture/etcdtest"
	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/qa/clusterlab"
	"github.com/nodejoin/nodejoin/qa/harness"
)

// joinName is the name both replicas advertise in their tokens; each
// machine's /etc/hosts gives it both replicas' addresses, its own
// replica's first, as a DNS name with one address per replica would (Go's
// dialer tries them in turn).
const joinName = "join." + clusterlab.ClusterName

// etcdDir holds the members' certificates and the replicas' client
// certificate in each host.
const etcdDir = "/etc/nodejoin/etcd"

// Pull mode on etcd: three etcd members with client TLS on three hosts,
// two join-service replicas on two other hosts sharing the store. First
// machines race for a dynamic pool through both replicas: exact counts, no
// slot given twice. Then machines join while one replica and the etcd
// leader are killed: every machine joins exactly once, through the
// survivor (node-join retries a network error; its fetch key makes a
// fetch whose answer died with the replica answered again), nothing lost
// or doubled.
func TestPullEtcdReplicas(t *testing.T) {
	const race, raceSlots, killed = 10, 8, 12
	harness.Require(t)
	etcdtest.Bin(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	t.Cleanup(cancel)
	l := clusterlab.New(t, harness.Options{Nodes: 4 + race + killed, ShareRSAHostKey: true})
	must(t, "cluster-init", l.Init(ctx))
	replicas := []*harness.Host{l.Master, l.Nodes[0]}
	members := l.Nodes[1:4]
	raceHosts, killHosts := l.Nodes[4:4+race], l.Nodes[4+race:]

	// The second replica is a master candidate: the cluster's state as the
	// master has it (Ganeti replicates it to its candidates).
	copyClusterState(t, l.Master, replicas[1])
	store, etcds := startEtcdOnHosts(t, ctx, members, replicas)
	serveArgs := []string{"--advertise", joinName, "--store", store,
		"--etcd-ca", etcdDir + "/ca.pem", "--etcd-cert", etcdDir + "/client.pem", "--etcd-key", etcdDir + "/client.key"}
	var stops []func()
	for _, r := range replicas {
		stops = append(stops, serveJoinService(t, ctx, r, serveArgs...))
	}
	for i, h := range append(append([]*harness.Host(nil), raceHosts...), killHosts...) {
		own, other := replicas[i%2], replicas[1-i%2]
		appendFile(t, h.Path("/etc/hosts"), fmt.Sprintf("%s\t%s\n%s\t%s\n", own.IP(), joinName, other.IP(), joinName))
	}

	// The race: raceSlots slots in a pool, added half through each replica.
	raceTok := addPool(t, ctx, replicas, raceSlots)
	results := joinAll(ctx, t, raceHosts, raceTok)
	got := map[string]string{} // slot -> node
	refused := 0
	for i, r := range results {
		n := raceHosts[i]
		switch r.Code {
		case 0:
			uuid := joinedSlot(t, n, r)
			if prev, ok := got[uuid]; ok {
				t.Errorf("%s and %s both got slot %s", prev, n.Name, uuid)
			}
			got[uuid] = n.Name
		case 3:
			refused++
			if !strings.Contains(r.Stderr, "the master refused: 503 no_free_slot: ") {
				t.Errorf("%s: refused otherwise: %s", n.Name, r)
			}
		default:
			t.Errorf("%s: %s", n.Name, r)
		}
	}
	if len(got) != raceSlots || refused != race-raceSlots {
		t.Fatalf("the race: %d joins and %d refusals, want %d and %d", len(got), refused, raceSlots, race-raceSlots)
	}
	for _, r := range replicas {
		if n := auditCount(t, r, `"event":"assign"`, `"outcome":"ok"`); n == 0 {
			t.Errorf("%s's join-service handed out no slot: the race did not go through both replicas", r.Name)
		}
	}

	// The kill: a pool of exactly one slot per machine; the second replica
	// and the etcd leader die once that replica has handed out two slots.
	killTok := addPool(t, ctx, replicas, killed)
	leader := etcdLeader(t, ctx, replicas[0], members)
	before := auditCount(t, replicas[1], `"event":"assign"`, `"outcome":"ok"`)
	done := make(chan []clusterlab.Result, 1)
	go func() { done <- joinAll(ctx, t, killHosts, killTok) }()
	for auditCount(t, replicas[1], `"event":"assign"`, `"outcome":"ok"`) < before+2 {
		select {
		case <-done:
			t.Fatalf("every machine was done before %s had handed out two slots", replicas[1].Name)
		case <-time.After(20 * time.Millisecond):
		}
	}
	stops[1]()
	etcds[leader].Kill()
	t.Logf("killed %s's join-service and the etcd leader on %s mid-run", replicas[1].Name, members[leader].Name)
	results = <-done
	joinedVia := map[string]bool{}
	kgot := map[string]string{}
	for i, r := range results {
		n := killHosts[i]
		if r.Code != 0 {
			t.Errorf("%s: %s", n.Name, r)
			continue
		}
		uuid := joinedSlot(t, n, r)
		if prev, ok := kgot[uuid]; ok {
			t.Errorf("%s and %s both got slot %s", prev, n.Name, uuid)
		}
		kgot[uuid] = n.Name
		joinedVia[n.Name] = true
	}
	if len(kgot) != killed {
		t.Fatalf("after the kill: %d of %d machines joined", len(kgot), killed)
	}

	// Nothing lost or doubled: every slot of both pools used once by one
	// machine, with its joined report; every joined machine recorded by a
	// replica; the survivor took over machines that started on the other.
	r := must(t, "slot list", clusterlab.Run(ctx, replicas[0], nil, "join-service", "slot", "list"))
	var slots []struct {
		UUID   string `json:"uuid"`
		Used   int    `json:"used"`
		State  string `json:"state"`
		Report *struct {
			Status string `json:"status"`
		} `json:"report"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &slots); err != nil {
		t.Fatalf("slot list: %v\n%s", err, r.Stdout)
	}
	used := 0
	for _, s := range slots {
		_, a := got[s.UUID]
		_, b := kgot[s.UUID]
		switch {
		case !a && !b && s.Used == 0:
		case !a && !b:
			t.Errorf("slot %s used %d times by no machine that joined (lost)", s.UUID, s.Used)
		case s.Used != 1 || s.State != "spent" || s.Report == nil || s.Report.Status != joinapi.StatusJoined:
			t.Errorf("slot %s: used %d, %s, report %+v", s.UUID, s.Used, s.State, s.Report)
		default:
			used++
		}
	}
	if len(slots) != raceSlots+killed || used != raceSlots+killed {
		t.Errorf("%d slots, %d used once with a joined report; want %d", len(slots), used, raceSlots+killed)
	}
	recorded := map[string]int{}
	for _, rep := range replicas {
		ss, err := clusterlab.Ssconf(rep)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, name := range strings.Fields(ss["node_list"]) {
			if seen[name] {
				t.Errorf("%s's node list has %s twice", rep.Name, name)
			}
			seen[name] = true
			recorded[name]++
		}
	}
	for _, name := range append(mapValues(got), mapValues(kgot)...) {
		if recorded[name] == 0 {
			t.Errorf("%s joined but no replica recorded it", name)
		}
	}
	tookOver := 0
	for i, n := range killHosts {
		if i%2 == 1 && auditCount(t, replicas[0], `"event":"report"`, `"status":"joined"`, `"node":"`+n.Name+`"`) > 0 {
			tookOver++
		}
	}
	if tookOver == 0 {
		t.Errorf("no machine that started on %s reported joined to %s", replicas[1].Name, replicas[0].Name)
	}
	t.Logf("%d machines that started on %s joined through %s; %d answers of a fetch given again", tookOver,
		replicas[1].Name, replicas[0].Name, auditCount(t, replicas[0], "answered again"))
}

// addPool adds n dynamic slots of one new pool, alternately through each
// replica, and returns the pool's token for node-join.
func addPool(t *testing.T, ctx context.Context, replicas []*harness.Host, n int) joinapi.Token {
	t.Helper()
	r := must(t, "slot add", clusterlab.Run(ctx, replicas[0], []byte(`{"dynamic": true, "ttl": "10m"}`), "join-service", "slot", "add"))
	var pool struct {
		Secret    string `json:"secret"`
		BootParam string `json:"boot_param"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &pool); err != nil {
		t.Fatal(err)
	}
	more, _ := json.Marshal(map[string]any{"dynamic": true, "secret": pool.Secret, "ttl": "10m"})
	for i := 1; i < n; i++ {
		must(t, "slot add", clusterlab.Run(ctx, replicas[i%2], more, "join-service", "slot", "add"))
	}
	tok, err := joinapi.ParseToken(strings.TrimPrefix(pool.BootParam, joinapi.BootParamKey+"="))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Host != joinName {
		t.Fatalf("the token names %q, want %q", tok.Host, joinName)
	}
	tok.UUID = joinapi.DynamicUUID
	return tok
}

// joinAll runs node-join on every host at once with tok.
func joinAll(ctx context.Context, t *testing.T, hosts []*harness.Host, tok joinapi.Token) []clusterlab.Result {
	for _, h := range hosts {
		writeRootFile(t, h, "/root/join.token", tok.Text()+"\n")
	}
	results := make([]clusterlab.Result, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() {
			results[i] = clusterlab.Run(ctx, h, nil, "node-join", "--token-file", "/root/join.token", "--timeout", "1m")
		})
	}
	wg.Wait()
	return results
}

// joinedSlot is the slot of a node-join that exited 0, checked.
func joinedSlot(t *testing.T, n *harness.Host, r clusterlab.Result) string {
	t.Helper()
	var res struct {
		UUID     string `json:"uuid"`
		NodeName string `json:"node_name"`
		Recorded bool   `json:"recorded"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil || !res.Recorded || res.NodeName != n.Name || res.UUID == "" {
		t.Errorf("%s: %+v %v", n.Name, res, err)
	}
	return res.UUID
}

// auditCount counts the lines of h's audit log that hold every one of
// words.
func auditCount(t *testing.T, h *harness.Host, words ...string) int {
	t.Helper()
	b, err := os.ReadFile(h.Path("/var/log/nodejoin/join-service.audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
lines:
	for _, line := range strings.Split(string(b), "\n") {
		for _, w := range words {
			if !strings.Contains(line, w) {
				continue lines
			}
		}
		n++
	}
	return n
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func appendFile(t *testing.T, p, text string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// copyClusterState copies the master's cluster state (Ganeti's data dir,
// cluster.json, the cluster's SSH host keys) to another host.
func copyClusterState(t *testing.T, from, to *harness.Host) {
	t.Helper()
	copyTree(t, from.Path("/var/lib/ganeti"), to.Path("/var/lib/ganeti"))
	copyFile(t, from.Path("/var/lib/nodejoin/cluster.json"), to.Path("/var/lib/nodejoin/cluster.json"))
	keys, err := filepath.Glob(from.Path("/etc/ssh/ssh_host_*"))
	if err != nil || len(keys) == 0 {
		t.Fatalf("the master's host keys: %v", err)
	}
	for _, k := range keys {
		copyFile(t, k, to.Path("/etc/ssh/"+filepath.Base(k)))
	}
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, fi.Mode().Perm())
		case d.Type().IsRegular():
			copyFile(t, p, target)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}

// startEtcdOnHosts starts one etcd member with client TLS on each of
// members (etcdtest's command line), gives the clients (the replicas) the
// CA and the client certificate, waits until every member is healthy, and
// returns the store URL and the members.
func startEtcdOnHosts(t *testing.T, ctx context.Context, members, clients []*harness.Host) (string, []*etcdtest.Member) {
	t.Helper()
	var ips []net.IP
	var spec etcdtest.Spec
	for i, m := range members {
		ips = append(ips, net.IP(m.IP().AsSlice()))
		spec.Names = append(spec.Names, fmt.Sprintf("e%d", i))
		spec.Clients = append(spec.Clients, m.IP().String()+":2379")
		spec.Peers = append(spec.Peers, m.IP().String()+":2380")
	}
	spec.Token = "qa-" + members[0].Namespace()
	pki := etcdtest.WritePKI(t, t.TempDir(), ips)
	inHost := func(p string) string { return etcdDir + "/" + filepath.Base(p) }
	spec.PKI = etcdtest.PKI{CAFile: inHost(pki.CAFile), ServerCert: inHost(pki.ServerCert), ServerKey: inHost(pki.ServerKey),
		ClientCert: inHost(pki.ClientCert), ClientKey: inHost(pki.ClientKey)}
	for _, h := range append(append([]*harness.Host(nil), members...), clients...) {
		if err := os.MkdirAll(h.Path(etcdDir), 0o700); err != nil {
			t.Fatal(err)
		}
		for _, f := range pki.Files() {
			copyFile(t, f, h.Path(inHost(f)))
		}
	}
	var running []*etcdtest.Member
	for i, h := range members {
		log := h.Path("/var/log/etcd.log")
		f, err := os.Create(log)
		if err != nil {
			t.Fatal(err)
		}
		cmd := h.Command(ctx, append([]string{"etcd"}, spec.Args(i, "/var/lib/nodejoin/etcd")...)...)
		cmd.Stdout, cmd.Stderr = f, f
		running = append(running, etcdtest.Start(t, spec.Names[i], spec.Clients[i], log, cmd))
		f.Close()
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		healthy := 0
		for _, ep := range spec.Clients {
			if r := etcdCurl(ctx, clients[0], "https://"+ep+"/health", ""); r.OK() && strings.Contains(r.Stdout, `"health":"true"`) {
				healthy++
			}
		}
		if healthy == len(members) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd: %d of %d members healthy after 30s", healthy, len(members))
		}
	}
	return "etcd://" + strings.Join(spec.Clients, ",") + "/qa/", running
}

// etcdCurl asks a member's HTTP gateway from h, with the client
// certificate; body set means POST.
func etcdCurl(ctx context.Context, h *harness.Host, url, body string) clusterlab.Result {
	args := []string{"curl", "-sS", "--max-time", "5", "--cacert", etcdDir + "/ca.pem",
		"--cert", etcdDir + "/client.pem", "--key", etcdDir + "/client.key"}
	if body != "" {
		args = append(args, "-X", "POST", "-d", body)
	}
	return clusterlab.Run(ctx, h, nil, append(args, url)...)
}

// etcdLeader returns the index of the member that leads now.
func etcdLeader(t *testing.T, ctx context.Context, from *harness.Host, members []*harness.Host) int {
	t.Helper()
	for i, m := range members {
		r := etcdCurl(ctx, from, "https://"+m.IP().String()+":2379/v3/maintenance/status", "{}")
		var st struct {
			Header struct {
				MemberID string `json:"member_id"`
			} `json:"header"`
			Leader string `json:"leader"`
		}
		if !r.OK() || json.Unmarshal([]byte(r.Stdout), &st) != nil {
			t.Fatalf("etcd status of %s: %s", m.Name, r)
		}
		if st.Header.MemberID == st.Leader {
			return i
		}
	}
	t.Fatal("etcd: no member leads")
	return -1
}
