package noded

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/joindoc"
)

// Client asks a node daemon over mutual TLS: it presents the master's
// client certificate and accepts only a server presenting the cluster
// certificate.
type Client struct {
	http *http.Client
}

// NewClient returns a client for the cluster certificate and the master's
// client key pair.
func NewClient(cluster *x509.Certificate, client *certs.KeyPair) *Client {
	return NewClientAny([]*x509.Certificate{cluster}, []*certs.KeyPair{client})
}

// NewClientAny is NewClient for a rotation of the cluster certificate: a
// daemon presenting any of clusters is trusted, and of clients the one it
// asks for is presented (certs.ClientTLSConfigAny).
func NewClientAny(clusters []*x509.Certificate, clients []*certs.KeyPair) *Client {
	tc := certs.ClientTLSConfigAny(clusters, clients)
	tc.ClientSessionCache = sessionCache(clusters, clients)
	tr := &http.Transport{
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: 5 * time.Second,
		DisableKeepAlives:   true,
		Proxy:               nil,
	}
	return &Client{http: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// sessions are the TLS sessions this process has with node daemons, one
// cache per identity (the cluster certificates trusted, the client
// certificates presented), shared by every client of that identity: the
// ssconf push after a run resumes the session of its join's version
// request, and a resumed handshake spares both ends the certificates, their
// checks and the signatures (the key exchange stays: forward secrecy is
// kept). On a resumed session the client still checks the daemon's
// certificate (certs.ClientTLSConfigAny's VerifyConnection), and the daemon
// its client's against the roots it trusts now. A daemon started since the
// session cannot read its ticket: the handshake is then a full one.
var sessions struct {
	sync.Mutex
	caches map[[sha256.Size]byte]tls.ClientSessionCache
}

// maxIdentities bounds sessions: a process has one identity, two during a
// rotation of the cluster certificate.
const maxIdentities = 8

// sessionsPerIdentity bounds one cache: a session per node daemon.
const sessionsPerIdentity = 4096

func sessionCache(clusters []*x509.Certificate, clients []*certs.KeyPair) tls.ClientSessionCache {
	h := sha256.New()
	for _, c := range clusters {
		h.Write([]byte("cluster\x00"))
		h.Write(c.Raw)
	}
	for _, c := range clients {
		h.Write([]byte("client\x00"))
		h.Write(c.Cert.Raw)
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	sessions.Lock()
	defer sessions.Unlock()
	if c, ok := sessions.caches[key]; ok {
		return c
	}
	if sessions.caches == nil || len(sessions.caches) >= maxIdentities {
		sessions.caches = map[[sha256.Size]byte]tls.ClientSessionCache{}
	}
	c := tls.NewLRUClientSessionCache(sessionsPerIdentity)
	sessions.caches[key] = c
	return c
}

// Version asks host:port for /version.
func (c *Client) Version(ctx context.Context, host string, port int) (*Version, error) {
	body, err := c.do(ctx, http.MethodGet, host, port, "/version", nil)
	if err != nil {
		return nil, err
	}
	var v Version
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("GET /version: %w", err)
	}
	return &v, nil
}

// do sends one request with an optional JSON body and returns the body of
// a 200 answer; any other status is an error with the daemon's reasons.
func (c *Client) do(ctx context.Context, method, host string, port int, path string, in any) ([]byte, error) {
	var reqBody io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		reqBody = bytes.NewReader(b)
	}
	u := "https://" + net.JoinHostPort(host, strconv.Itoa(port)) + path
	req, err := http.NewRequestWithContext(ctx, method, u, reqBody)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e ErrorReply
		if json.Unmarshal(data, &e) == nil && len(e.Errors) > 0 {
			return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.Join(e.Errors, "; "))
		}
		return nil, fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return data, nil
}

// WaitVersion asks until the daemon answers or ctx ends: again after
// 5 ms, the wait doubling up to interval (a daemon just restarted listens
// within milliseconds; one still starting on a busy node need not be
// asked every few). It returns the last error when ctx ends.
func (c *Client) WaitVersion(ctx context.Context, host string, port int, interval time.Duration) (*Version, error) {
	var last error
	wait := min(5*time.Millisecond, interval)
	for {
		v, err := c.Version(ctx, host, port)
		if err == nil {
			return v, nil
		}
		// An attempt cut short by the deadline says only that time ran
		// out; the attempt before it says why the node did not answer.
		if last == nil || ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return nil, last
		case <-time.After(wait):
			wait = min(2*wait, interval)
		}
	}
}

// PutSsconf sends the master's ssconf values to host:port and returns what
// the node changed.
func (c *Client) PutSsconf(ctx context.Context, host string, port int, u *joindoc.SsconfUpdate) (*joindoc.Result, error) {
	body, err := c.do(ctx, http.MethodPut, host, port, "/ssconf", u)
	if err != nil {
		return nil, err
	}
	return joindoc.DecodeResult(bytes.NewReader(body))
}
