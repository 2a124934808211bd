package connlimit

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// closedSoon says whether the server closed c: a read ends with EOF or a
// reset, not with the client's own deadline.
func closedSoon(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !errors.As(err, &ne) || !ne.Timeout()
}

// One address holds at most ConnsPerClient connections; another address
// is still served up to Conns in all; a closed connection gives its place
// back.
func TestListen(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Listen(inner, Limits{ConnsPerClient: 2, Conns: 3}, slog.New(slog.DiscardHandler))
	defer ln.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func(from string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dial("127.0.0.1")
	dial("127.0.0.1")
	s1 := <-accepted
	<-accepted
	if a3 := dial("127.0.0.1"); !closedSoon(a3) {
		t.Error("a third connection from one address was kept")
	}
	dial("127.0.0.2")
	<-accepted
	if b2 := dial("127.0.0.3"); !closedSoon(b2) {
		t.Error("a fourth connection in all was kept")
	}
	s1.Close()
	dial("127.0.0.1")
	select {
	case <-accepted:
	case <-time.After(2 * time.Second):
		t.Error("the place given back by a closed connection was not reused")
	}
	if got := (Limits{}).WithDefaults(); got != Default {
		t.Errorf("zero limits = %+v, want the defaults", got)
	}
}
