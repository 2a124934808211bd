package sshrun

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The first session over a new connection would wait about 40 ms for
// nothing. sshd leaves Nagle's algorithm on until a connection's first
// session starts, and right after the login it sends its host keys
// (hostkeys-00@openssh.com), then, to the session request, the channel's
// confirmation: the confirmation is held until the master's kernel has
// acknowledged the host keys, and that kernel delays its acknowledgement
// (Linux: at least 40 ms) because ssh has nothing to send meanwhile. Later
// sessions do not wait (sshd turns Nagle off as the first one starts), and
// ssh has an option for neither side. So Conn holds a duplicate of the
// ControlMaster's TCP socket (pidfd_getfd) until its first session has
// opened and asks the kernel to acknowledge at once (TCP_QUICKACK, which
// the kernel drops again by itself: hence the repeats). Where no duplicate
// can be had (a ProxyCommand's pipe instead of a socket, ptrace refused)
// nothing else changes; an operator can get the same with
// `ip route change ... quickack 1` on the master's route to the nodes.

// acker is the duplicate of the ControlMaster's TCP socket. A nil acker
// does nothing.
type acker struct{ fd int }

// quickAckTimes are when, after the first session's ssh started, the
// kernel is told again: the host keys arrive while the mux client starts
// and sends its request, a few milliseconds.
var quickAckTimes = []time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond, 8 * time.Millisecond, 16 * time.Millisecond}

// grabAcker duplicates pid's connected TCP socket, or returns nil.
func grabAcker(pid int) *acker {
	pfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil
	}
	defer func() { _ = unix.Close(pfd) }()
	dir := "/proc/" + strconv.Itoa(pid) + "/fd/"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	for _, e := range ents {
		if l, _ := os.Readlink(dir + e.Name()); !strings.HasPrefix(l, "socket:") {
			continue
		}
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fd, err := unix.PidfdGetfd(pfd, n, 0)
		if err != nil {
			return nil // refused for one, refused for all
		}
		if connectedTCP(fd) {
			return &acker{fd: fd}
		}
		_ = unix.Close(fd)
	}
	return nil
}

func connectedTCP(fd int) bool {
	if d, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); err != nil || (d != unix.AF_INET && d != unix.AF_INET6) {
		return false
	}
	if t, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || t != unix.SOCK_STREAM {
		return false
	}
	l, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	return err == nil && l == 0
}

// ack sends any delayed acknowledgement now and acknowledges the next
// segments at once.
func (a *acker) ack() error {
	if a == nil {
		return nil
	}
	return unix.SetsockoptInt(a.fd, unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
}

// ackWhileOpening acks at quickAckTimes, from now until the returned
// function is called (when the first session has ended), which then
// closes a.
func (a *acker) ackWhileOpening() (stop func()) {
	done := make(chan struct{})
	var acking sync.WaitGroup
	acking.Go(func() { a.ackWhile(done) })
	return func() { close(done); acking.Wait(); a.close() }
}

// ackWhile acks at quickAckTimes until done is closed.
func (a *acker) ackWhile(done <-chan struct{}) {
	if a == nil {
		return
	}
	start := time.Now()
	for _, d := range quickAckTimes {
		select {
		case <-done:
			return
		case <-time.After(d - time.Since(start)):
			_ = a.ack()
		}
	}
}

// close gives the duplicate up: while it is open the connection outlives
// the master's exit.
func (a *acker) close() {
	if a != nil {
		_ = unix.Close(a.fd)
	}
}
