package joinservice

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/master/slotstore"
)

// startEtcd runs one etcd member on loopback (the store's own suite runs
// three, with TLS, and kills them mid-run; this only shares one set of
// slots between two services).
func startEtcd(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("etcd: not found, and CI=true: tools/install-deps.sh installs etcd-server")
		}
		t.Skip("etcd: not found (Debian's etcd-server)")
	}
	client, peer := freePort(t), freePort(t)
	dir := t.TempDir()
	cu, pu := "http://127.0.0.1:"+strconv.Itoa(client), "http://127.0.0.1:"+strconv.Itoa(peer)
	log, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--name", "m1", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", cu, "--advertise-client-urls", cu,
		"--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu, "--initial-cluster", "m1="+pu)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		log.Close()
	})
	return "127.0.0.1:" + strconv.Itoa(client)
}

// Two join-service replicas on one etcd: machines racing for a pool's
// slots through either replica get distinct slots, and a secret fetched
// through one is spent through the other.
func TestTwoReplicasOnEtcd(t *testing.T) {
	ep := startEtcd(t)
	root := t.TempDir()
	initCluster(t, root)
	var fs []*fixture
	for i := range 2 {
		f := &fixture{root: root, now: time.Now()}
		var err error
		deadline := time.Now().Add(15 * time.Second)
		for {
			f.store, err = slotstore.Open(context.Background(), slotstore.Config{Store: "etcd://" + ep + "/t/"}, slotstore.Options{})
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.store.Close() })
		fs = append(fs, f.serve(t, filepath.Join(root, fmt.Sprintf("run/replica%d.sock", i))))
	}
	a := fs[0].add(t, AddRequest{NodeName: "node1.example.org"})
	if code, body := fs[1].node(t, "127.0.0.2", fs[1].pins).fetch(t, a.UUID, a.Secret); code != http.StatusOK {
		t.Fatalf("fetch through the other replica: %d %s", code, body)
	}
	if code, body := fs[0].node(t, "127.0.0.2", fs[0].pins).fetch(t, a.UUID, a.Secret); code != http.StatusGone || errCode(t, body) != joinapi.CodeSpent {
		t.Fatalf("second fetch through the first replica: %d %s, want 410 spent", code, body)
	}

	pool := fs[0].add(t, AddRequest{Dynamic: true})
	for range 3 {
		fs[1].add(t, AddRequest{Dynamic: true, Secret: pool.Secret})
	}
	var mu sync.Mutex
	got, refused := map[string]bool{}, 0
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := fs[i%2]
			n := f.node(t, fmt.Sprintf("127.0.3.%d", i+1), f.pins)
			code, body := n.call(t, http.MethodPost, joinapi.PathAssign, pool.Secret, joinapi.AssignRequest{NodeName: fmt.Sprintf("e%d.example.org", i)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case code == http.StatusOK:
				var d joinapi.Documents
				if err := json.Unmarshal(body, &d); err != nil || got[d.UUID] {
					t.Errorf("assign: %s (a slot handed out twice?)", body)
				}
				got[d.UUID] = true
			case code == http.StatusServiceUnavailable && errCode(t, body) == joinapi.CodeNoFreeSlot:
				refused++
			default:
				t.Errorf("assign: %d %s", code, body)
			}
		}()
	}
	wg.Wait()
	if len(got) != 4 || refused != 2 {
		t.Fatalf("%d slots handed out, %d refused; want 4 and 2", len(got), refused)
	}
}
