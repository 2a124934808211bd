package sshrun

import (
	"errors"
	"io"
	"net"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestGrabAcker: the acker is a duplicate of the child's connected TCP
// socket (not of its other descriptors), and closing it, with the child
// gone, closes the connection.
func TestGrabAcker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	f, err := conn.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	// A child holding a listening socket and the connection, as ssh holds
	// its control socket and its connection.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lf, err := ln2.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command("sleep", "30")
	child.ExtraFiles = append(child.ExtraFiles, lf, f)
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	for _, c := range []io.Closer{lf, ln2, f, conn} {
		c.Close()
	}

	a := grabAcker(child.Process.Pid)
	if a == nil {
		t.Fatal("no acker for a child with a TCP connection")
	}
	sa, err := unix.Getsockname(a.fd)
	if err != nil {
		t.Fatal(err)
	}
	in4, ok := sa.(*unix.SockaddrInet4)
	if want := peer.RemoteAddr().(*net.TCPAddr); !ok || in4.Port != want.Port {
		t.Fatalf("acker socket is %v, want the connection from %v", sa, want)
	}
	if err := a.ack(); err != nil {
		t.Fatalf("ack: %v", err)
	}
	done := make(chan struct{})
	close(done)
	a.ackWhile(done) // returns at once

	_ = child.Process.Kill()
	_ = child.Wait()
	a.close()
	_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := peer.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("after the child and the acker closed, the peer read %d bytes, %v; want EOF", n, err)
	}

	noSocket := exec.Command("sleep", "30")
	if err := noSocket.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = noSocket.Process.Kill(); _ = noSocket.Wait() }()
	if a := grabAcker(noSocket.Process.Pid); a != nil {
		a.close()
		t.Fatal("an acker for a child without a TCP connection")
	}
	var none *acker
	if err := none.ack(); err != nil {
		t.Fatal(err)
	}
	none.close()
}
