// Package connlimit bounds the connections a TCP server holds open, per
// client address and in all, and the time a client may take, so that a
// slow or silent client cannot exhaust a daemon (noded, join-service).
package connlimit

import (
	"log/slog"
	"net"
	"sync"
	"time"
)

// Limits bound what one client can make a server spend. The zero value of
// a field means its default (Default).
type Limits struct {
	ReadHeaderTimeout time.Duration // request headers; the TLS handshake gets the least of the first three
	ReadTimeout       time.Duration // the whole request, body included
	WriteTimeout      time.Duration // from the end of the headers to the end of the answer
	IdleTimeout       time.Duration // between requests on one connection
	ConnsPerClient    int           // open connections from one IP address
	Conns             int           // open connections in all
}

// Default is generous for a master that pushes to one node at a time per
// connection, and small enough that a client holding connections open
// without a handshake is cut off.
var Default = Limits{
	ReadHeaderTimeout: 10 * time.Second,
	ReadTimeout:       30 * time.Second, // a body is at most 1 MiB
	WriteTimeout:      time.Minute,      // longer than noded's wait for the ssconf lock (30 s), so the answer says why
	IdleTimeout:       time.Minute,
	ConnsPerClient:    16,
	Conns:             256,
}

// WithDefaults fills the zero fields of l from Default.
func (l Limits) WithDefaults() Limits {
	d := Default
	for _, f := range []struct{ v, def *time.Duration }{
		{&l.ReadHeaderTimeout, &d.ReadHeaderTimeout}, {&l.ReadTimeout, &d.ReadTimeout},
		{&l.WriteTimeout, &d.WriteTimeout}, {&l.IdleTimeout, &d.IdleTimeout},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	if l.ConnsPerClient <= 0 {
		l.ConnsPerClient = d.ConnsPerClient
	}
	if l.Conns <= 0 {
		l.Conns = d.Conns
	}
	return l
}

// listener closes at once, before any TLS handshake, a connection beyond
// the limits: a slow or silent client cannot hold more than perClient
// connections, nor the server more than total.
type listener struct {
	net.Listener
	perClient, total int
	log              *slog.Logger

	mu    sync.Mutex
	open  map[string]int
	count int
}

// Listen wraps ln so that it accepts at most l.ConnsPerClient open
// connections from one IP address and l.Conns in all (l's zero fields
// take their defaults); it logs each refusal to log.
func Listen(ln net.Listener, l Limits, log *slog.Logger) net.Listener {
	l = l.WithDefaults()
	return &listener{Listener: ln, perClient: l.ConnsPerClient, total: l.Conns, log: log, open: map[string]int{}}
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c)
		l.mu.Lock()
		reason := ""
		switch {
		case l.open[ip] >= l.perClient:
			reason = "too many connections from this address"
		case l.count >= l.total:
			reason = "too many connections"
		default:
			l.open[ip]++
			l.count++
		}
		l.mu.Unlock()
		if reason == "" {
			return &conn{Conn: c, release: func() { l.release(ip) }}, nil
		}
		l.log.Warn("refused", "remote", c.RemoteAddr().String(), "reason", reason,
			"limit_per_client", l.perClient, "limit", l.total)
		_ = c.Close()
	}
}

func (l *listener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.count--
	if l.open[ip]--; l.open[ip] <= 0 {
		delete(l.open, ip)
	}
}

func remoteIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// conn gives its place back once, on the first Close.
type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
