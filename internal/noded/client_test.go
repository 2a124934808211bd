package noded

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/certs"
)

// pair parses what a certs maker returns, or ends the test.
func pair(t testing.TB) func([]byte, error) *certs.KeyPair {
	return func(pemData []byte, err error) *certs.KeyPair {
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
}

// daemon serves /version over mutual TLS as a node daemon does and
// records, per request, whether its handshake resumed a session.
type daemon struct {
	port    int
	mu      sync.Mutex
	resumed []bool
}

func serve(t testing.TB, cluster *certs.KeyPair) *daemon {
	t.Helper()
	d := &daemon{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		d.resumed = append(d.resumed, r.TLS.DidResume)
		d.mu.Unlock()
		_, _ = w.Write([]byte(`{"program":"noded"}`))
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(tls.NewListener(ln, certs.ServerTLSConfig(cluster))) }()
	t.Cleanup(func() { _ = srv.Close() })
	d.port = ln.Addr().(*net.TCPAddr).Port
	return d
}

func (d *daemon) handshakes() []bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]bool(nil), d.resumed...)
}

// A client made later for the same identity, as node-add's ssconf push
// after its joins' version requests, resumes the TLS session instead of
// a full handshake; a client of another identity does not, and a daemon
// that cannot read the ticket (restarted) gets a full handshake, not an
// error.
func TestSessionResumedAcrossClients(t *testing.T) {
	cluster := pair(t)(certs.NewClusterCertificate("c1.example.org", time.Hour))
	master := pair(t)(certs.NewClientCertificateWithKey(cluster, "master.example.org", time.Hour, certs.KeySpec{Type: "ecdsa", Bits: 256}))
	other := pair(t)(certs.NewClientCertificateWithKey(cluster, "node1.example.org", time.Hour, certs.KeySpec{Type: "ecdsa", Bits: 256}))
	d := serve(t, cluster)
	ctx := context.Background()
	ask := func(c *Client, port int) {
		t.Helper()
		if v, err := c.Version(ctx, "127.0.0.1", port); err != nil || v.Program != "noded" {
			t.Fatalf("version: %+v, %v", v, err)
		}
	}
	ask(NewClient(cluster.Cert, master), d.port)
	ask(NewClient(cluster.Cert, master), d.port)
	ask(NewClient(cluster.Cert, other), d.port)
	if got := d.handshakes(); len(got) != 3 || got[0] || !got[1] || got[2] {
		t.Errorf("resumed per request = %v, want [false true false]", got)
	}
	// The same address, a new daemon (new ticket keys): a full handshake.
	restarted := serve(t, cluster)
	ask(NewClient(cluster.Cert, master), restarted.port)
	if got := restarted.handshakes(); len(got) != 1 || got[0] {
		t.Errorf("resumed on a new daemon = %v, want [false]", got)
	}
}

// BenchmarkVersionRequest is one GET /version over mutual TLS on a new
// connection, both ends in this process (the daemon's share is about half):
// full, a handshake with certificates as a join's first request makes; and
// resumed, as node-add's ssconf push after its joins does. The client key is
// RSA 2048, as cluster-init makes the master's.
func BenchmarkVersionRequest(b *testing.B) {
	cluster := pair(b)(certs.NewClusterCertificate("c1.example.org", time.Hour))
	master := pair(b)(certs.NewClientCertificate(cluster, "master.example.org", time.Hour))
	d := serve(b, cluster)
	ctx := context.Background()
	for _, resume := range []bool{false, true} {
		name := map[bool]string{false: "full", true: "resumed"}[resume]
		b.Run(name, func(b *testing.B) {
			c := NewClient(cluster.Cert, master)
			if !resume {
				c.http.Transport.(*http.Transport).TLSClientConfig.ClientSessionCache = nil
			}
			if _, err := c.Version(ctx, "127.0.0.1", d.port); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := c.Version(ctx, "127.0.0.1", d.port); err != nil {
					b.Fatal(err)
				}
			}
			if got := d.handshakes(); got[len(got)-1] != resume {
				b.Fatalf("the last request resumed: %v, want %v", got[len(got)-1], resume)
			}
		})
	}
}
