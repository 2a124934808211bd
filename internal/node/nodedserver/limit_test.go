package nodedserver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/certs"
)

// closedSoon says whether the server closes c within d: a read ends with
// EOF or a reset, not with the client's own deadline.
func closedSoon(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !errors.As(err, &ne) || !ne.Timeout()
}

// A client that opens a connection and says nothing, or sends its body a
// byte at a time, is cut off by the timeouts.
func TestSlowClientsCutOff(t *testing.T) {
	f := serveWith(t, Limits{ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: 600 * time.Millisecond})
	addr := "127.0.0.1:" + strconv.Itoa(f.port)
	before := dataDir(t, f.cfg)

	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if !closedSoon(silent, 5*time.Second) {
		t.Error("a connection without a handshake was still open after 5 s")
	}

	// The master's own certificate, a valid request, a body that never ends.
	tc, err := tls.Dial("tcp", addr, certs.ClientTLSConfig(f.cluster.Cert, f.master))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	body := `{"cluster_name": "c1.example.org", "ssconf": {"cluster_name": "c1.example.org", "node_list": "x"}}`
	fmt.Fprintf(tc, "PUT /ssconf HTTP/1.1\r\nHost: n\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	start := time.Now()
	cut := false
	for i := 0; i < len(body)-1 && time.Since(start) < 5*time.Second; i++ {
		if _, err := tc.Write([]byte{body[i]}); err != nil {
			cut = true
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !cut && !closedSoon(tc, 2*time.Second) {
		t.Error("a client sending its body a byte every 50 ms was still served after 5 s")
	}
	sameFiles(t, "the slow clients", before, dataDir(t, f.cfg))
}

// One address cannot hold more than ConnsPerClient connections, even
// without a handshake; another address is still served, and a slot given
// back is usable again.
func TestConnectionsPerClient(t *testing.T) {
	const n = 3
	f := serveWith(t, Limits{ConnsPerClient: n})
	addr := "127.0.0.1:" + strconv.Itoa(f.port)
	var held []net.Conn
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if !closedSoon(extra, 5*time.Second) {
		t.Fatalf("connection %d from one address was not closed", n+1)
	}
	if closedSoon(held[0], 200*time.Millisecond) {
		t.Error("a connection within the limit was closed")
	}

	// Another loopback address (Linux answers all of 127/8) is served.
	version := func(local string) error {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext,
			TLSClientConfig: certs.ClientTLSConfig(f.cluster.Cert, f.master), DisableKeepAlives: true}}
		resp, err := c.Get("https://" + addr + "/version")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s", resp.Status)
		}
		return nil
	}
	if err := version("127.0.0.2"); err != nil {
		t.Errorf("another address while one is at its limit: %v", err)
	}
	if err := version("127.0.0.1"); err == nil {
		t.Error("a request from the address at its limit was served")
	}
	held[0].Close()
	var err2 error
	for i := 0; i < 50; i++ { // the server notices the close asynchronously
		if err2 = version("127.0.0.1"); err2 == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err2 != nil {
		t.Errorf("after one connection was closed: %v", err2)
	}
	logText := f.log.String()
	if !strings.Contains(logText, `msg=refused remote=127.0.0.1:`) ||
		!strings.Contains(logText, `reason="too many connections from this address"`) {
		t.Errorf("the refusal is not logged:\n%s", logText)
	}
}
