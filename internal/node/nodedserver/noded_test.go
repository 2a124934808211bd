package nodedserver

import (
	"bytes"
	"context"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/noded"
)

func mustPair(t *testing.T, pemData []byte, err error) *certs.KeyPair {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	kp, err := certs.ParseKeyPair(pemData)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// fixture is a daemon serving under a temporary root with a new cluster
// certificate, and the master's client certificate listed as the one
// candidate.
type fixture struct {
	port    int
	cluster *certs.KeyPair // server.pem, as every node holds it
	master  *certs.KeyPair // the master's client.pem, listed in master_candidates_certs
	cfg     *nodeconf.Config
	log     *bytes.Buffer
}

func serveWith(t *testing.T, lim Limits) *fixture {
	t.Helper()
	root := t.TempDir()
	cfg, err := nodeconf.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	pemData, err := certs.NewClusterCertificate("c1.example.org", time.Hour)
	cluster := mustPair(t, pemData, err)
	masterPEM, err := certs.NewClientCertificate(cluster, "master.example.org", time.Hour)
	master := mustPair(t, masterPEM, err)
	data := cfg.Path(cfg.DataDir)
	os.MkdirAll(data, 0o755)
	if err := os.WriteFile(filepath.Join(data, "server.pem"), pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"cluster_name": "c1.example.org\n", "master_node": "master.example.org\n",
		"master_candidates_certs": "master.example.org=" + certs.Digest(master.Cert) + "\n"} {
		if err := os.WriteFile(filepath.Join(data, "ssconf_"+k), []byte(v), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	var logBuf bytes.Buffer
	srv, err := LoadServer(cfg, slog.New(slog.NewTextHandler(&syncWriter{w: &logBuf}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv.Limits = lim
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &fixture{port: ln.Addr().(*net.TCPAddr).Port, cluster: cluster, master: master, cfg: cfg, log: &logBuf}
}

// syncWriter lets the test read a log the server writes from many goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

func TestVersionOverMutualTLS(t *testing.T) {
	f := serveWith(t, Limits{})
	port, cluster := f.port, f.cluster
	clientPEM, err := certs.NewClientCertificate(cluster, "master.example.org", time.Hour)
	client := mustPair(t, clientPEM, err)
	ctx := context.Background()

	v, err := noded.NewClient(cluster.Cert, client).Version(ctx, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	if v.Program != "noded" || v.ClusterName != "c1.example.org" || v.Protocol != noded.Protocol {
		t.Errorf("version = %+v", v)
	}

	// A client certificate from another cluster is refused.
	otherPEM, err := certs.NewClusterCertificate("c2.example.org", time.Hour)
	other := mustPair(t, otherPEM, err)
	strangerPEM, err := certs.NewClientCertificate(other, "master.c2", time.Hour)
	stranger := mustPair(t, strangerPEM, err)
	if _, err := noded.NewClient(cluster.Cert, stranger).Version(ctx, "127.0.0.1", port); err == nil {
		t.Error("a client of another cluster was answered")
	}
	// A server that does not present the cluster certificate is refused.
	if _, err := noded.NewClient(other.Cert, client).Version(ctx, "127.0.0.1", port); err == nil ||
		!strings.Contains(err.Error(), "the node daemon's certificate is not the cluster's") {
		t.Errorf("talking to a server of another cluster: err = %v", err)
	}
	// The refused handshakes are logged; a connection that closes at once
	// (a port probe) is not a refusal.
	probe, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	probe.Close()
	if _, err := noded.NewClient(cluster.Cert, client).Version(ctx, "127.0.0.1", port); err != nil {
		t.Fatal(err) // the probe has been handled by now
	}
	logText := f.log.String()
	if !regexp.MustCompile(`level=WARN msg=refused remote=127\.0\.0\.1:\d+ reason="TLS handshake: tls: client didn't provide a certificate"`).MatchString(logText) {
		t.Errorf("the stranger's refusal is not logged:\n%s", logText)
	}
	if strings.Contains(logText, "EOF") || strings.Count(logText, "msg=refused") != 2 {
		t.Errorf("want two refusals, no EOF:\n%s", logText)
	}
}

func TestWaitVersionGivesUp(t *testing.T) {
	pemData, err := certs.NewClusterCertificate("c1", time.Hour)
	cluster := mustPair(t, pemData, err)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = noded.NewClient(cluster.Cert, cluster).WaitVersion(ctx, "127.0.0.1", port, 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("err = %v, want connection refused", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}

// Only the master may write ssconf; the values are checked as
// node-daemon-setup checks them, and a second equal update changes nothing.
func TestPutSsconf(t *testing.T) {
	f := serveWith(t, Limits{})
	port, cluster, cfg := f.port, f.cluster, f.cfg
	nodePEM, err := certs.NewClientCertificate(cluster, "node2.example.org", time.Hour)
	nodePair := mustPair(t, nodePEM, err)
	master, node := noded.NewClient(cluster.Cert, f.master), noded.NewClient(cluster.Cert, nodePair)
	ctx := context.Background()
	update := &joindoc.SsconfUpdate{ClusterName: "c1.example.org", Ssconf: map[string]string{
		"cluster_name": "c1.example.org", "master_node": "master.example.org",
		"node_list": "master.example.org\nnode1.example.org\nnode2.example.org"}}

	if _, err := node.PutSsconf(ctx, "127.0.0.1", port, update); err == nil ||
		err.Error() != "PUT /ssconf: 403 Forbidden: the client certificate (SHA-1 "+certs.Digest(nodePair.Cert)+
			") is not in this node's ssconf_master_candidates_certs" {
		t.Errorf("a node's update: %v", err)
	}
	res, err := master.PutSsconf(ctx, "127.0.0.1", port, update)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || len(res.Files) != 3 {
		t.Errorf("first update: %+v", res)
	}
	got, err := os.ReadFile(cfg.Path("/var/lib/ganeti/ssconf_node_list"))
	if err != nil || string(got) != "master.example.org\nnode1.example.org\nnode2.example.org\n" {
		t.Errorf("ssconf_node_list = %q, %v", got, err)
	}
	if res, err := master.PutSsconf(ctx, "127.0.0.1", port, update); err != nil || res.Changed {
		t.Errorf("second update: %+v, %v", res, err)
	}
	bad := &joindoc.SsconfUpdate{ClusterName: "c2.example.org", Ssconf: map[string]string{"cluster_name": "c2.example.org"}}
	if _, err := master.PutSsconf(ctx, "127.0.0.1", port, bad); err == nil || !strings.Contains(err.Error(),
		`400 Bad Request: invalid input: /cluster_name: "c2.example.org" does not match this node's cluster "c1.example.org"`) {
		t.Errorf("another cluster's update: %v", err)
	}
	bad = &joindoc.SsconfUpdate{ClusterName: "c1.example.org", Ssconf: map[string]string{"cluster_name": "c1.example.org", "nope": "x"}}
	if _, err := master.PutSsconf(ctx, "127.0.0.1", port, bad); err == nil || !strings.Contains(err.Error(), "/ssconf/nope: value must be one of") {
		t.Errorf("an unknown key: %v", err)
	}
	bad = &joindoc.SsconfUpdate{ClusterName: "c1.example.org", Ssconf: map[string]string{"cluster_name": "c1.example.org",
		"master_candidates_certs": "master.example.org=" + certs.Digest(f.master.Cert) + "\nnode2 AB:CD"}}
	if _, err := master.PutSsconf(ctx, "127.0.0.1", port, bad); err == nil || !strings.Contains(err.Error(),
		`400 Bad Request: invalid input: /ssconf/master_candidates_certs: line 2: "node2 AB:CD" is not node=DIGEST`) {
		t.Errorf("a malformed candidate list: %v", err)
	}
}

// dataDir returns every file of the node's data directory and its content.
func dataDir(t *testing.T, cfg *nodeconf.Config) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(cfg.Path(cfg.DataDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(cfg.Path(cfg.DataDir), e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

func sameFiles(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	if !maps.Equal(before, after) {
		t.Errorf("%s changed the data directory:\nbefore %q\nafter  %q", what, before, after)
	}
}

// A node holds server.pem, the cluster's signing key: with it, it can mint
// a client certificate with the master's name. That certificate is not the
// master's, so it may not write ssconf, not even to list itself as a
// candidate; the refusals are logged by fingerprint; and the real master is
// still accepted afterwards.
func TestForgedMasterCertificateRefused(t *testing.T) {
	f := serveWith(t, Limits{})
	ctx := context.Background()
	forgedPEM, err := certs.NewClientCertificate(f.cluster, "master.example.org", time.Hour)
	forged := mustPair(t, forgedPEM, err)
	forger := noded.NewClient(f.cluster.Cert, forged)
	masterDigest, forgedDigest := certs.Digest(f.master.Cert), certs.Digest(forged.Cert)
	before := dataDir(t, f.cfg)

	for name, values := range map[string]map[string]string{
		"take over the node list": {"cluster_name": "c1.example.org", "master_node": "evil.example.org", "node_list": "evil.example.org"},
		"list itself as a candidate": {"cluster_name": "c1.example.org",
			"master_candidates_certs": "evil.example.org=" + forgedDigest + "\nmaster.example.org=" + masterDigest},
		"replace the master's digest": {"cluster_name": "c1.example.org", "master_candidates_certs": "master.example.org=" + forgedDigest},
	} {
		_, err := forger.PutSsconf(ctx, "127.0.0.1", f.port, &joindoc.SsconfUpdate{ClusterName: "c1.example.org", Ssconf: values})
		want := "PUT /ssconf: 403 Forbidden: the client certificate (SHA-1 " + forgedDigest +
			") is not in this node's ssconf_master_candidates_certs"
		if err == nil || err.Error() != want {
			t.Errorf("%s: err = %v, want %s", name, err, want)
		}
	}
	sameFiles(t, "the forged certificate's updates", before, dataDir(t, f.cfg))
	logText := f.log.String()
	if n := strings.Count(logText, `msg=refused method=PUT path=/ssconf client=`+certs.Fingerprint(forged.Cert)); n != 3 {
		t.Errorf("%d refusals logged by fingerprint, want 3:\n%s", n, logText)
	}
	if !strings.Contains(logText, `reason="the client certificate (SHA-1 `+forgedDigest+`) is not in this node's ssconf_master_candidates_certs"`) {
		t.Errorf("the reason is not logged:\n%s", logText)
	}

	res, err := noded.NewClient(f.cluster.Cert, f.master).PutSsconf(ctx, "127.0.0.1", f.port, &joindoc.SsconfUpdate{
		ClusterName: "c1.example.org", Ssconf: map[string]string{"cluster_name": "c1.example.org", "node_list": "master.example.org\nnode1.example.org"}})
	if err != nil || !res.Changed {
		t.Fatalf("the master's update after the forged ones: %+v, %v", res, err)
	}
	if !strings.Contains(f.log.String(), `msg=request method=PUT path=/ssconf client=`+certs.Fingerprint(f.master.Cert)+` remote=`) {
		t.Errorf("no request line for the master's update:\n%s", f.log.String())
	}
}

// A listed certificate may change the candidate list, but not drop itself
// from it; a certificate it adds is then accepted.
func TestCandidateCertsChanges(t *testing.T) {
	f := serveWith(t, Limits{})
	ctx := context.Background()
	master := noded.NewClient(f.cluster.Cert, f.master)
	candPEM, err := certs.NewClientCertificate(f.cluster, "node1.example.org", time.Hour)
	cand := mustPair(t, candPEM, err)
	masterLine := "master.example.org=" + certs.Digest(f.master.Cert)
	candLine := "node1.example.org=" + certs.Digest(cand.Cert)
	put := func(c *noded.Client, certsValue string) error {
		_, err := c.PutSsconf(ctx, "127.0.0.1", f.port, &joindoc.SsconfUpdate{ClusterName: "c1.example.org",
			Ssconf: map[string]string{"cluster_name": "c1.example.org", "master_candidates_certs": certsValue}})
		return err
	}
	before := dataDir(t, f.cfg)
	for _, v := range []string{candLine, "", "bootstrap=" + certs.Digest(cand.Cert)} {
		want := "PUT /ssconf: 403 Forbidden: /ssconf/master_candidates_certs: the update does not list the sender's own certificate (SHA-1 " +
			certs.Digest(f.master.Cert) + "); it would lock the master out"
		if err := put(master, v); err == nil || err.Error() != want {
			t.Errorf("locking itself out with %q: err = %v", v, err)
		}
	}
	sameFiles(t, "the lock-out updates", before, dataDir(t, f.cfg))
	if !strings.Contains(f.log.String(), "it would lock the master out") {
		t.Errorf("the lock-out refusal is not logged:\n%s", f.log.String())
	}
	// The master adds a candidate; the candidate is then accepted, and
	// may hand the list back with both.
	if err := put(master, masterLine+"\n"+candLine); err != nil {
		t.Fatal(err)
	}
	if err := put(noded.NewClient(f.cluster.Cert, cand), candLine+"\n"+masterLine); err != nil {
		t.Errorf("the added candidate: %v", err)
	}
	if got := dataDir(t, f.cfg)["ssconf_master_candidates_certs"]; got != candLine+"\n"+masterLine+"\n" {
		t.Errorf("ssconf_master_candidates_certs = %q", got)
	}
}
