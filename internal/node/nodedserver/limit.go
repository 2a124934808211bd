package nodedserver

import (
	"log/slog"
	"net"
	"sync"
	"time"
)

// Limits bound what one client can make the daemon spend. The zero value
// of a field means its default (DefaultLimits).
type Limits struct {
	ReadHeaderTimeout time.Duration // request headers; the TLS handshake gets the least of the first three
	ReadTimeout       time.Duration // the whole request, body included
	WriteTimeout      time.Duration // from the end of the headers to the end of the answer
	IdleTimeout       time.Duration // between requests on one connection
	ConnsPerClient    int           // open connections from one IP address
	Conns             int           // open connections in all
}

// DefaultLimits are generous for a master that pushes to one node at a
// time per connection (node-add keeps none open), and small enough that
// a client holding connections open without a handshake is cut off.
var DefaultLimits = Limits{
	ReadHeaderTimeout: 10 * time.Second,
	ReadTimeout:       30 * time.Second, // a body is at most 1 MiB
	WriteTimeout:      time.Minute,      // longer than a wait for the ssconf lock (30 s), so the answer says why
	IdleTimeout:       time.Minute,
	ConnsPerClient:    16,
	Conns:             256,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
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

// limitListener closes at once, before any TLS handshake, a connection
// beyond the limits: a slow or silent client cannot hold more than
// perClient connections, nor the daemon more than total.
type limitListener struct {
	net.Listener
	perClient, total int
	log              *slog.Logger

	mu    sync.Mutex
	open  map[string]int
	count int
}

func newLimitListener(ln net.Listener, l Limits, log *slog.Logger) *limitListener {
	return &limitListener{Listener: ln, perClient: l.ConnsPerClient, total: l.Conns, log: log, open: map[string]int{}}
}

func (l *limitListener) Accept() (net.Conn, error) {
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
			return &limitConn{Conn: c, release: func() { l.release(ip) }}, nil
		}
		l.log.Warn("refused", "remote", c.RemoteAddr().String(), "reason", reason,
			"limit_per_client", l.perClient, "limit", l.total)
		_ = c.Close()
	}
}

func (l *limitListener) release(ip string) {
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

// limitConn gives its slot back once, on the first Close.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
