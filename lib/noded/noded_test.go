package noded

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/lib/certs"
	"github.com/nodejoin/nodejoin/lib/joindoc"
	"github.com/nodejoin/nodejoin/lib/nodeconf"
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

// serve starts a daemon under a temporary root with a new cluster
// certificate and returns its port, the cluster pair and the config.
func serve(t *testing.T) (int, *certs.KeyPair, *nodeconf.Config) {
	t.Helper()
	root := t.TempDir()
	cfg, err := nodeconf.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	pemData, err := certs.NewClusterCertificate("c1.example.org", time.Hour)
	cluster := mustPair(t, pemData, err)
	data := cfg.Path(cfg.DataDir)
	os.MkdirAll(data, 0o755)
	if err := os.WriteFile(filepath.Join(data, "server.pem"), pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"cluster_name": "c1.example.org\n", "master_node": "master.example.org\n"} {
		if err := os.WriteFile(filepath.Join(data, "ssconf_"+k), []byte(v), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := LoadServer(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
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
	return ln.Addr().(*net.TCPAddr).Port, cluster, cfg
}

func TestVersionOverMutualTLS(t *testing.T) {
	port, cluster, _ := serve(t)
	clientPEM, err := certs.NewClientCertificate(cluster, "master.example.org", time.Hour)
	client := mustPair(t, clientPEM, err)
	ctx := context.Background()

	v, err := NewClient(cluster.Cert, client).Version(ctx, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	if v.Program != "noded" || v.ClusterName != "c1.example.org" || v.Protocol != Protocol {
		t.Errorf("version = %+v", v)
	}

	// A client certificate from another cluster is refused.
	otherPEM, err := certs.NewClusterCertificate("c2.example.org", time.Hour)
	other := mustPair(t, otherPEM, err)
	strangerPEM, err := certs.NewClientCertificate(other, "master.c2", time.Hour)
	stranger := mustPair(t, strangerPEM, err)
	if _, err := NewClient(cluster.Cert, stranger).Version(ctx, "127.0.0.1", port); err == nil {
		t.Error("a client of another cluster was answered")
	}
	// A server that does not present the cluster certificate is refused.
	if _, err := NewClient(other.Cert, client).Version(ctx, "127.0.0.1", port); err == nil ||
		!strings.Contains(err.Error(), "the node daemon's certificate is not the cluster's") {
		t.Errorf("talking to a server of another cluster: err = %v", err)
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
	_, err = NewClient(cluster.Cert, cluster).WaitVersion(ctx, "127.0.0.1", port, 50*time.Millisecond)
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
	port, cluster, cfg := serve(t)
	pair := func(cn string) *certs.KeyPair {
		pemData, err := certs.NewClientCertificate(cluster, cn, time.Hour)
		return mustPair(t, pemData, err)
	}
	master, node := NewClient(cluster.Cert, pair("master.example.org")), NewClient(cluster.Cert, pair("node2.example.org"))
	ctx := context.Background()
	update := &joindoc.SsconfUpdate{ClusterName: "c1.example.org", Ssconf: map[string]string{
		"cluster_name": "c1.example.org", "master_node": "master.example.org",
		"node_list": "master.example.org\nnode1.example.org\nnode2.example.org"}}

	if _, err := node.PutSsconf(ctx, "127.0.0.1", port, update); err == nil ||
		err.Error() != "PUT /ssconf: 403 Forbidden: only the master node may update ssconf" {
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
}
