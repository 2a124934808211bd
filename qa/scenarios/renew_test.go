package scenarios

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/qa/clusterlab"
	"github.com/nodejoin/nodejoin/qa/harness"
)

// renewReport is cluster-renew's JSON report.
type renewReport struct {
	Started bool     `json:"started"`
	Renewed []string `json:"renewed"`
	Pending []string `json:"pending"`
	Closed  bool     `json:"closed"`
}

func renewRun(t *testing.T, ctx context.Context, l *clusterlab.Lab, args ...string) (clusterlab.Result, renewReport) {
	t.Helper()
	r := clusterlab.Run(ctx, l.Master, nil, append([]string{"cluster-renew"}, args...)...)
	t.Logf("master# cluster-renew %s (%v): exit %d\n%s%s", strings.Join(args, " "), r.Took.Round(time.Millisecond), r.Code, r.Stdout, r.Stderr)
	var rep renewReport
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil && r.Code != 2 {
		t.Errorf("cluster-renew's report: %v\n%s", err, r.Stdout) // not Fatal: it runs in a goroutine too
	}
	return r, rep
}

// Scenario: joins run in a loop, push (node-add of new and of recorded
// nodes) and pull (node-join with a join-service slot), while cluster-renew
// rotates the cluster's SSH host keys, hmac key and certificate and the
// master's root key: no join fails, every node ends on the new keys and
// certificate (node-list --check reaches every node daemon) and
// authorizes the master's new root key and no longer its old one, a token made before the rotation
// (the old pin) still reaches join-service in the window and is refused
// once it is closed, and a node presenting the old cluster key is then
// refused (and joins again with that key pinned).
func TestRenewHostKeysWhileJoining(t *testing.T) {
	l, _ := newLab(t, 4)
	// Longer than newLab's: some twenty joins on a shared machine.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	n1, n2, n3, pull := l.Nodes[0], l.Nodes[1], l.Nodes[2], l.Nodes[3]
	if err := l.TrustHostKeys(n1, n2, n3); err != nil {
		t.Fatal(err)
	}
	must(t, "node-add", l.NodeAdd(ctx, n1.Name, n2.Name))
	serveJoinService(t, ctx, l.Master)
	const key = "/etc/ssh/ssh_host_ed25519_key.pub"
	oldKey := fingerprint(t, ctx, l.Master, key)
	oldHMAC := readFile(t, l.Master.Path("/var/lib/ganeti/hmac.key"))
	oldServer := readFile(t, l.Master.Path("/var/lib/ganeti/server.pem"))
	const rootPub = "/root/.ssh/id_ed25519.pub"
	oldRoot := keyField(readFile(t, l.Master.Path(rootPub)))
	// A token made before the rotation pins the old certificate's key; a
	// dry run of node-join checks the pin and sends nothing.
	_, oldBoot := slotAdd(t, ctx, l.Master, `{"node_name": "`+sibling(pull.Name, "oldpin")+`", "ttl": "10m"}`)
	writeRootFile(t, pull, "/root/cmdline-old", oldBoot+"\n")
	oldPinDryRun := func() clusterlab.Result {
		return clusterlab.Run(ctx, pull, nil, "node-join", "--dry-run", "--boot-param", "--cmdline", "/root/cmdline-old", "--timeout", "30s")
	}

	// The loop: node-add of n1, n2, n3 in turn (n3 joins for the first
	// time in it), until told to stop.
	var (
		mu       sync.Mutex
		joins    int
		failures []string
	)
	stop, done, twoJoins := make(chan struct{}), make(chan struct{}), make(chan struct{})
	joined := make(chan struct{}, 1) // told after each join, never blocking the loop
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			node := []*harness.Host{n1, n2, n3}[i%3]
			r := l.NodeAdd(ctx, node.Name)
			mu.Lock()
			joins++
			if !r.OK() {
				failures = append(failures, node.Name+": "+r.String())
			}
			// The ssconf push after each join reaches every node daemon,
			// whichever certificate it is on: a refusal of the TLS
			// identity or of the writer is a failure of the rotation (a
			// daemon restarting meanwhile is not).
			for _, l := range strings.Split(r.Stderr, "\n") {
				if strings.Contains(l, "updating ssconf through the node daemon") &&
					(strings.Contains(l, "certificate") || strings.Contains(l, "tls:") || strings.Contains(l, "403")) {
					failures = append(failures, node.Name+": "+l)
				}
			}
			if joins == 2 {
				close(twoJoins)
			}
			mu.Unlock()
			select {
			case joined <- struct{}{}:
			default:
			}
		}
	}()
	<-twoJoins
	renewDone := make(chan struct{})
	var renew clusterlab.Result
	var rep renewReport
	go func() {
		defer close(renewDone)
		renew, rep = renewRun(t, ctx, l, "--new-host-keys", "--new-hmac-key", "--new-cluster-certificate", "--new-root-keys", "--window", "10m")
	}()
	// A pull join while the rotation runs.
	_, bootParam := slotAdd(t, ctx, l.Master, `{"node_name": "`+pull.Name+`", "ttl": "10m"}`)
	writeRootFile(t, pull, "/root/cmdline", bootParam+"\n")
	pr := clusterlab.Run(ctx, pull, nil, "node-join", "--boot-param", "--cmdline", "/root/cmdline", "--timeout", "1m")
	<-renewDone
	// Two more joins after the rotation's run, still in the window.
	mu.Lock()
	after := joins + 2
	mu.Unlock()
	for n := 0; n < after; {
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-joined:
			mu.Lock()
			n = joins
			mu.Unlock()
		}
	}
	close(stop)
	<-done
	if !pr.OK() {
		failures = append(failures, pull.Name+" (pull): "+pr.String())
	}
	t.Logf("%d joins by node-add and 1 by node-join during the rotation", joins)
	if len(failures) > 0 {
		t.Errorf("%d joins failed during the rotation:\n%s", len(failures), strings.Join(failures, "\n"))
	}
	if !renew.OK() || !rep.Started {
		t.Fatalf("cluster-renew --new-host-keys: %s", renew)
	}
	// In the window the old pin still reaches join-service.
	if r := oldPinDryRun(); !r.OK() {
		t.Errorf("node-join --dry-run with the old pin in the window: %s", r)
	}

	// Close the window: every node recorded meanwhile is taken first.
	fr, frep := renewRun(t, ctx, l, "--finish")
	if !fr.OK() || !frep.Closed || len(frep.Pending) > 0 {
		t.Fatalf("cluster-renew --finish: %s", fr)
	}
	if newKey := fingerprint(t, ctx, l.Master, key); newKey == oldKey {
		t.Fatal("the master's host key did not change")
	}
	hmac := readFile(t, l.Master.Path("/var/lib/ganeti/hmac.key"))
	if hmac == oldHMAC {
		t.Error("the master's hmac key did not change")
	}
	server := readFile(t, l.Master.Path("/var/lib/ganeti/server.pem"))
	if server == oldServer {
		t.Error("the master's cluster certificate did not change")
	}
	for _, n := range l.Nodes {
		checkJoined(t, ctx, l, n) // the master's (new) host keys, the cluster alias
		if readFile(t, n.Path("/var/lib/ganeti/hmac.key")) != hmac {
			t.Errorf("%s: hmac.key is not the master's new one", n.Name)
		}
		if readFile(t, n.Path("/var/lib/ganeti/server.pem")) != server {
			t.Errorf("%s: server.pem is not the master's new one", n.Name)
		}
	}
	newRoot := keyField(readFile(t, l.Master.Path(rootPub)))
	if newRoot == oldRoot {
		t.Error("the master's root key did not change")
	}
	for _, n := range l.Nodes {
		ak := readFile(t, n.Path("/root/.ssh/authorized_keys"))
		if !strings.Contains(ak, newRoot) || strings.Contains(ak, oldRoot) {
			t.Errorf("%s: authorized_keys after the window, want the master's new root key and not its old one:\n%s", n.Name, ak)
		}
	}
	// Every node daemon answers the master on the new certificate.
	must(t, "node-list --check", clusterlab.Run(ctx, l.Master, nil, "node-list", "--check"))
	// After the window the old pin is refused, before anything is sent.
	if r := oldPinDryRun(); r.OK() || !strings.Contains(r.Stderr, "the server's certificate matches no pin") {
		t.Errorf("node-join --dry-run with the old pin after the window: %s", r)
	}

	// After the window: n1 presenting the old cluster keys (the master's
	// backups of them) is refused, as any unknown key; pinned, it joins
	// and is on the new keys again.
	var oldFPs []string
	for _, kind := range []string{"ed25519", "rsa", "ecdsa"} {
		base := "/etc/ssh/ssh_host_" + kind + "_key"
		priv, _ := filepath.Glob(l.Master.Path(base + ".backup-*"))
		pub, _ := filepath.Glob(l.Master.Path(base + ".pub.backup-*"))
		if len(priv) != 1 || len(pub) != 1 {
			continue
		}
		must(t, "old key", clusterlab.Run(ctx, n1, []byte(readFile(t, priv[0])), "sh", "-c", "cat > "+base))
		must(t, "old key", clusterlab.Run(ctx, n1, []byte(readFile(t, pub[0])), "sh", "-c", "cat > "+base+".pub"))
		oldFPs = append(oldFPs, fingerprint(t, ctx, n1, base+".pub"))
	}
	if len(oldFPs) == 0 {
		t.Fatal("the master kept no backup of its old host keys")
	}
	must(t, "restart sshd", clusterlab.Run(ctx, n1, nil, "nj-restart-sshd"))
	r := l.NodeAdd(ctx, n1.Name)
	if r.OK() || !strings.Contains(r.Stdout+r.Stderr, "host-key") {
		t.Errorf("node-add of %s presenting the old cluster key after the window: %s", n1.Name, r)
	}
	args := []string{}
	for _, fp := range oldFPs {
		args = append(args, "--host-key-fingerprint", n1.Name+"="+fp)
	}
	must(t, "node-add with the old key pinned", l.NodeAdd(ctx, append(args, n1.Name)...))
	checkJoined(t, ctx, l, n1)
}

// Scenario: a node is down while cluster-renew runs: it stays pending and
// the run fails (exit 1) and keeps the window; once the node is back,
// node-add (its next contact) accepts the old key it still presents and
// gives it the new ones, and the next run finishes the rotation.
func TestRenewFinishedByARerun(t *testing.T) {
	l, ctx := newLab(t, 2)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	if err := l.TrustHostKeys(n1, n2); err != nil {
		t.Fatal(err)
	}
	must(t, "node-add", l.NodeAdd(ctx, n1.Name, n2.Name))
	if err := n2.StopSSHD(); err != nil {
		t.Fatal(err)
	}
	r, rep := renewRun(t, ctx, l, "--new-host-keys", "--finish")
	if r.Code != 1 || rep.Closed || len(rep.Pending) != 1 || rep.Pending[0] != n2.Name {
		t.Fatalf("with %s down: %s", n2.Name, r)
	}
	if err := n2.StartSSHD(); err != nil {
		t.Fatal(err)
	}
	// Its next contact, within the window: node-add takes the old key it
	// still presents and gives it the new ones.
	must(t, "node-add of the node that was down", l.NodeAdd(ctx, n2.Name))
	checkJoined(t, ctx, l, n2)
	r, rep = renewRun(t, ctx, l, "--finish")
	if !r.OK() || !rep.Closed || len(rep.Renewed) != 1 || rep.Renewed[0] != n2.Name {
		t.Fatalf("the rerun: %s", r)
	}
	for _, n := range l.Nodes {
		checkJoined(t, ctx, l, n)
	}
}

// sibling is label in name's domain (name's first label replaced).
func sibling(name, label string) string {
	if _, d, ok := strings.Cut(name, "."); ok {
		return label + "." + d
	}
	return label
}

// keyField is the base64 field of a public key line.
func keyField(line string) string {
	if f := strings.Fields(line); len(f) >= 2 {
		return f[1]
	}
	return line
}

// Scenario: the master is killed (SIGKILL) in the middle of a rotation of
// the host keys and the cluster certificate, while it joins one of three
// nodes again: the rotation stays staged, and a rerun finishes it with the
// same new keys, joining again only the nodes not done before the kill;
// every node ends on the master's new keys and certificate, and node-list
// --check reaches every node daemon.
func TestRenewKilledMidRun(t *testing.T) {
	l, ctx := newLab(t, 3)
	if err := l.TrustHostKeys(l.Nodes...); err != nil {
		t.Fatal(err)
	}
	must(t, "node-add", l.NodeAdd(ctx, clusterlab.Names(l.Nodes)...))
	// node-daemon-setup behind a wrapper; on the held node it says that it
	// started, then waits until it is killed.
	held := l.Nodes[1]
	const started = "/run/renew-held"
	wrap := func(n *harness.Host, hold bool) {
		script := "#!/bin/sh\nexec node-daemon-setup \"$@\"\n"
		if hold {
			script = "#!/bin/sh\n: > " + started + "\nexec sleep 600\n"
		}
		if err := os.WriteFile(n.Path("/usr/local/sbin/nds-wrap"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range l.Nodes {
		wrap(n, n == held)
	}
	oldServer := readFile(t, l.Master.Path("/var/lib/ganeti/server.pem"))
	killed := make(chan clusterlab.Result, 1)
	go func() {
		killed <- clusterlab.Run(ctx, l.Master, nil, "cluster-renew", "--new-host-keys", "--new-cluster-certificate",
			"--parallel", "1", "--setup-program", "nds-wrap")
	}()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(held.Path(started)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster-renew did not reach %s within 2 minutes", held.Name)
		}
	}
	must(t, "kill cluster-renew", clusterlab.Run(ctx, l.Master, nil, "pkill", "-KILL", "-x", "cluster-renew"))
	if r := <-killed; r.OK() {
		t.Fatalf("cluster-renew was not killed: %s", r)
	}
	// The held session ends; its program never ran.
	must(t, "end the held session", clusterlab.Run(ctx, held, nil, "pkill", "-KILL", "-x", "sleep"))
	var st struct {
		Done []string `json:"done"`
	}
	if err := json.Unmarshal([]byte(readFile(t, l.Master.Path("/var/lib/nodejoin/renewal.json"))), &st); err != nil {
		t.Fatalf("the renewal state after the kill: %v", err)
	}
	t.Logf("renewed before the kill: %q", st.Done)
	if slices.Contains(st.Done, held.Name) {
		t.Fatalf("%s is recorded as done though its join was killed: %q", held.Name, st.Done)
	}
	if readFile(t, l.Master.Path("/var/lib/ganeti/server.pem")) == oldServer {
		t.Fatalf("the master was killed before it took the new certificate: the rerun would not start mid-way")
	}
	wrap(held, false)
	r, rep := renewRun(t, ctx, l, "--setup-program", "nds-wrap", "--finish")
	if !r.OK() || !rep.Closed || !slices.Contains(rep.Renewed, held.Name) {
		t.Fatalf("the rerun: %s", r)
	}
	for _, n := range st.Done {
		if slices.Contains(rep.Renewed, n) {
			t.Errorf("the rerun joined %s again, which the killed run had renewed", n)
		}
	}
	server := readFile(t, l.Master.Path("/var/lib/ganeti/server.pem"))
	for _, n := range l.Nodes {
		checkJoined(t, ctx, l, n)
		if readFile(t, n.Path("/var/lib/ganeti/server.pem")) != server {
			t.Errorf("%s: server.pem is not the master's new one", n.Name)
		}
	}
	must(t, "node-list --check", clusterlab.Run(ctx, l.Master, nil, "node-list", "--check"))
}
