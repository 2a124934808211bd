package joinservice

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	testfixture "github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/master/clusterinit"
	"github.com/nodejoin/nodejoin/internal/master/clustertest"
	"github.com/nodejoin/nodejoin/internal/master/slotstore"
)

// fixture is a master (a cluster under a temporary root), its embedded
// store, and a join-service serving both APIs on loopback.
type fixture struct {
	root   string
	svc    *Service
	store  *slotstore.Store
	addr   string // the API's host:port
	socket string
	admin  *AdminClient
	pins   []string
	audit  *testfixture.SyncBuffer
	now    time.Time
	mu     sync.Mutex // guards now
}

// freePort is a loopback port nothing listens on: the node daemon port of
// the test cluster, so that ssconf pushes to the test's nodes are refused
// at once instead of reaching another program.
func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func newFixture(t testing.TB, opts ...func(*Options)) *fixture {
	t.Helper()
	root := t.TempDir()
	initCluster(t, root)
	f := &fixture{root: root, now: time.Now()}
	b, err := slotstore.OpenBolt(filepath.Join(root, "var/lib/nodejoin/join-service"))
	if err != nil {
		t.Fatal(err)
	}
	f.store = slotstore.New(b, slotstore.Options{Now: f.clock})
	t.Cleanup(func() { f.store.Close() })
	return f.serve(t, filepath.Join(root, "run/nodejoin/join-service.sock"), opts...)
}

func initCluster(t testing.TB, root string) {
	t.Helper()
	clustertest.New(t, clusterinit.InitOptions{Root: root, ClusterName: "c1.example.org",
		MasterNode: "master.example.org", MasterIP: "192.0.2.1", NodeDaemonPort: freePort(t)})
}

// serve starts a join-service on f.store and f.root, its admin socket at
// socket.
func (f *fixture) serve(t testing.TB, socket string, opts ...func(*Options)) *fixture {
	t.Helper()
	f.audit = &testfixture.SyncBuffer{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	_, port, _ := net.SplitHostPort(f.addr)
	f.socket = socket
	adm, err := ListenAdmin(f.socket)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Store: f.store, Root: f.root, Host: "127.0.0.1", Port: atoi(port), Audit: NewAudit(f.audit), PushDelay: 10 * time.Millisecond}
	for _, fn := range opts {
		fn(&o)
	}
	f.svc, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.svc.Serve(ctx, ln, adm) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		adm.Close()
	})
	c, err := cluster.Open(f.root)
	if err != nil {
		t.Fatal(err)
	}
	f.pins = []string{joinapi.Pin(c.Server.Cert)}
	f.admin = NewAdminClient(f.socket)
	return f
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// add runs slot add through the admin API.
func (f *fixture) add(t testing.TB, req AddRequest) AddAnswer {
	t.Helper()
	b, _ := json.Marshal(req)
	var a AddAnswer
	if err := f.admin.Do(context.Background(), http.MethodPost, AdminSlots, nil, b, &a); err != nil {
		t.Fatalf("slot add: %v", err)
	}
	return a
}

// node is a simulated booting machine: its own loopback address, its root
// key, and a client that trusts the master by pin only.
type node struct {
	http    *http.Client
	addr    string
	rootKey string
	f       *fixture
}

func (f *fixture) node(t testing.TB, ip string, pins []string) *node {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{TLSClientConfig: joinapi.ClientTLSConfig(pins), DialContext: d.DialContext,
		MaxIdleConnsPerHost: 2, ForceAttemptHTTP2: false}
	t.Cleanup(tr.CloseIdleConnections)
	return &node{http: &http.Client{Transport: tr, Timeout: 70 * time.Second}, addr: ip, f: f,
		rootKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " root@" + ip}
}

// call sends one request and returns the status and the body.
func (n *node) call(t testing.TB, method, path, secret string, body any) (int, []byte) {
	t.Helper()
	return n.callHeader(t, method, path, secret, nil, body)
}

// callHeader is call with more header fields.
func (n *node) callHeader(t testing.TB, method, path, secret string, hdr http.Header, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "https://"+n.f.addr+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := n.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func (n *node) fetch(t testing.TB, uuid, secret string) (int, []byte) {
	return n.call(t, http.MethodGet, "/v1/slots/"+uuid, secret, nil)
}

func (n *node) report(t testing.TB, uuid, secret, status string) (int, []byte) {
	return n.call(t, http.MethodPost, "/v1/slots/"+uuid+"/status", secret,
		joinapi.StatusRequest{Status: status, RootKey: n.rootKey, ClaimedAddr: "10.9.9.9"})
}

func errCode(t testing.TB, body []byte) string {
	t.Helper()
	var e joinapi.Error
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e.Code
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
