package joinservice

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/fixture/etcdtest"
	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/master/slotstore"
)

// startEtcd runs three etcd members with client TLS on loopback
// (etcdtest, as the store's own suite) and returns how to open a store on
// them under prefix.
func startEtcd(t testing.TB) func(prefix string) slotstore.Config {
	t.Helper()
	c := etcdtest.StartLocal(t)
	p := c.Spec.PKI
	return func(prefix string) slotstore.Config {
		return slotstore.Config{Store: "etcd://" + strings.Join(c.Spec.Endpoints(), ",") + prefix,
			CAFile: p.CAFile, CertFile: p.ClientCert, KeyFile: p.ClientKey}
	}
}

// openEtcd opens a store on the cluster, waiting for it to elect a leader.
func openEtcd(t testing.TB, cfg slotstore.Config) *slotstore.Store {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := slotstore.Open(context.Background(), cfg, slotstore.Options{})
		if err == nil {
			t.Cleanup(func() { s.Close() })
			return s
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Two join-service replicas on one etcd: machines racing for a pool's
// slots through either replica get distinct slots, and a secret fetched
// through one is spent through the other.
func TestTwoReplicasOnEtcd(t *testing.T) {
	etcd := startEtcd(t)
	root := t.TempDir()
	initCluster(t, root)
	var fs []*fixture
	for i := range 2 {
		f := &fixture{root: root, now: time.Now(), store: openEtcd(t, etcd("/t/"))}
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
