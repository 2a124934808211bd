package harness

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options says what New builds.
type Options struct {
	// Nodes is the number of hosts node1..nodeN besides master.
	Nodes int
	// ShareRSAHostKey gives every host of this process one RSA host key,
	// generated once, instead of a fresh RSA 3072 key per host (up to a
	// second of CPU each): labs of 50 nodes start in seconds. Each host's
	// ed25519 host key stays its own, and it is the key OpenSSH's client
	// prefers, so host key checks still tell the hosts apart; scenarios that
	// pin or change RSA keys must leave this off.
	ShareRSAHostKey bool
	// Ganeti lets the hosts see the machine's Ganeti install. Without it
	// ganetiDirs are hidden in every host, which is then a node without
	// Ganeti, as the node-side programs tell it (they look for Ganeti's
	// daemon-util): the machine has Ganeti only for the Ganeti scenario.
	Ganeti bool
	// WritableEtc gives master an /etc of its own: an overlay on the
	// machine's with its upper layer in the lab dir, left writable, so
	// that useradd(8) and userdel(8) change master's users only (the
	// machine callback's account).
	WritableEtc bool
	// Avahi gives every host its own dbus-daemon and avahi-daemon
	// (avahi.go).
	Avahi bool
}

// TB is what New and Require need of a test: testing.TB has it, and so can
// a program that is not a test (qa/demo, qa/bench).
type TB interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Skip(args ...any)
	Cleanup(func())
}

// Lab is a set of hosts on one bridge. Its fields are read-only.
type Lab struct {
	Prefix string       // "nj" + 4 hex digits, on every name the lab creates
	Dir    string       // the lab's directory tree on the real filesystem
	Subnet netip.Prefix // private /24, routed only inside the lab's namespaces
	Master *Host
	Nodes  []*Host

	lock       *os.File
	mu         sync.Mutex
	namespaces []string
	closeOnce  sync.Once
	closeErr   error
}

// Hosts returns master followed by the nodes.
func (l *Lab) Hosts() []*Host { return append([]*Host{l.Master}, l.Nodes...) }

// Host returns the host with this name, or nil.
func (l *Lab) Host(name string) *Host {
	for _, h := range l.Hosts() {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Namespaces returns the network namespaces the lab created (the switch's
// first), for tests that check that Close removed them.
func (l *Lab) Namespaces() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.namespaces...)
}

// New starts a lab of master and opts.Nodes nodes, each running sshd, with
// master's root key (/root/.ssh/id_ed25519) in every node's
// /root/.ssh/authorized_keys. The lab is closed by t.Cleanup; New fails the
// test if the lab cannot be built.
func New(t TB, opts Options) *Lab {
	t.Helper()
	Require(t)
	if err := Sweep(); err != nil {
		t.Logf("qa: removing leftovers of earlier runs: %v", err)
	}
	prefix, lock, err := lockLab()
	if err != nil {
		t.Fatalf("qa: reserving a lab prefix: %v", err)
	}
	var b [2]byte
	_, _ = rand.Read(b[:])
	l := &Lab{
		Prefix: prefix,
		Dir:    filepath.Join(baseDir, prefix),
		Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 200 + b[0]%51, b[1], 0}), 24),
		lock:   lock,
	}
	register(l)
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("qa: closing lab %s: %v", l.Prefix, err)
		}
	})
	start := time.Now()
	if err := l.start(opts); err != nil {
		t.Fatalf("qa: starting lab %s: %v", l.Prefix, err)
	}
	t.Logf("qa: lab %s (%s, %d nodes) up in %v", l.Prefix, l.Subnet, len(l.Nodes), time.Since(start).Round(time.Millisecond))
	return l
}

func (l *Lab) start(opts Options) error {
	if opts.Nodes < 0 || opts.Nodes > 200 {
		return fmt.Errorf("options: %d nodes, want 0 to 200", opts.Nodes)
	}
	if err := os.Mkdir(l.Dir, 0o755); err != nil {
		return err
	}
	names := []string{"master"}
	for i := 1; i <= opts.Nodes; i++ {
		names = append(names, fmt.Sprintf("node%d", i))
	}
	hosts := make([]*Host, len(names))
	for i, name := range names {
		a := l.Subnet.Addr().As4()
		a[3] = byte(i + 1)
		hosts[i] = &Host{Name: name, lab: l, ns: l.Prefix + "-" + name, ip: netip.AddrFrom4(a), dir: filepath.Join(l.Dir, name),
			shareRSA: opts.ShareRSAHostKey, hideGaneti: !opts.Ganeti,
			writableEtc: opts.WritableEtc && name == "master", avahi: opts.Avahi}
	}
	l.Master, l.Nodes = hosts[0], hosts[1:]

	// Key generation (RSA 3072 takes up to a second) runs while the
	// network is built; then each host starts its holder and sshd.
	// Boots are bounded: a few hundred holders and sshds started at
	// once on two cores overran each boot's own deadline (10 s).
	netReady := make(chan struct{})
	boots := make(chan struct{}, 4*runtime.NumCPU())
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.prepare(); err != nil {
				errs[i] = fmt.Errorf("%s: %w", h.Name, err)
				return
			}
			<-netReady
			boots <- struct{}{}
			defer func() { <-boots }()
			if err := h.boot(); err != nil {
				errs[i] = fmt.Errorf("%s: %w", h.Name, err)
			}
		}()
	}
	netErr := l.buildNetwork(hosts)
	close(netReady)
	wg.Wait()
	if err := errors.Join(append([]error{netErr}, errs...)...); err != nil {
		return err
	}
	return l.trustMasterKey()
}

// buildNetwork creates the switch namespace with bridge br0 and one
// namespace per host, its eth0 a veth whose peer is a bridge port. Both ends
// are created directly in their namespaces: nothing appears in the root one.
// Namespaces are created one after the other: concurrent first `ip netns add`
// calls race on mounting /run/netns.
func (l *Lab) buildNetwork(hosts []*Host) error {
	sw := l.Prefix + "-sw"
	if err := l.addNetns(sw); err != nil {
		return err
	}
	cmds := [][]string{
		{"-n", sw, "link", "add", "br0", "type", "bridge"},
		{"-n", sw, "link", "set", "br0", "up"},
	}
	if err := ipAll(cmds); err != nil {
		return err
	}
	for _, h := range hosts {
		if err := l.addNetns(h.ns); err != nil {
			return err
		}
		peer := h.ns // prefix-name: at most 14 bytes, under IFNAMSIZ
		cidr := netip.PrefixFrom(h.ip, l.Subnet.Bits()).String()
		err := ipAll([][]string{
			{"link", "add", "eth0", "netns", h.ns, "type", "veth", "peer", "name", peer, "netns", sw},
			{"-n", sw, "link", "set", peer, "master", "br0", "up"},
			{"-n", h.ns, "link", "set", "lo", "up"},
			{"-n", h.ns, "addr", "add", cidr, "dev", "eth0"},
			{"-n", h.ns, "link", "set", "eth0", "up"},
			// Some clients (hashicorp/mdns) need a default route.
			{"-n", h.ns, "route", "add", "default", "dev", "eth0"},
		})
		if err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	}
	return nil
}

func (l *Lab) addNetns(ns string) error {
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add %s: %s", ns, firstLine(out, err))
	}
	l.mu.Lock()
	l.namespaces = append(l.namespaces, ns)
	l.mu.Unlock()
	return nil
}

func ipAll(cmds [][]string) error {
	for _, args := range cmds {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %s", strings.Join(args, " "), firstLine(out, err))
		}
	}
	return nil
}

// hostsFile is every host's /etc/hosts: the lab's hosts by name, so that
// node-add, ssh and sshd's log use names as on a real cluster.
func (l *Lab) hostsFile() string {
	var b strings.Builder
	b.WriteString("# /etc/hosts of a nodejoin QA lab\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	for _, h := range l.Hosts() {
		fmt.Fprintf(&b, "%s\t%s\n", h.ip, h.Name)
	}
	return b.String()
}

// trustMasterKey puts master's root public key in every node's
// authorized_keys, as an operator who already has root access to the new
// machine would.
func (l *Lab) trustMasterKey() error {
	pub, err := os.ReadFile(l.Master.Path("/root/.ssh/id_ed25519.pub"))
	if err != nil {
		return err
	}
	for _, n := range l.Nodes {
		f, err := os.OpenFile(n.Path("/root/.ssh/authorized_keys"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		_, err = f.Write(pub)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Close kills every host, deletes the lab's namespaces and directory and
// releases its prefix. It is idempotent; New registers it with t.Cleanup.
// The hosts' mounts live in their own mount namespaces and vanish with them.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		unregister(l)
		var errs []error
		var hosts []*Host
		if l.Master != nil {
			hosts = l.Hosts()
		}
		for _, h := range hosts {
			h.killInit()
		}
		for _, h := range hosts {
			errs = append(errs, h.waitHolder())
		}
		errs = append(errs, removeNamespaces(l.Namespaces()))
		errs = append(errs, os.RemoveAll(l.Dir))
		os.Remove(filepath.Join(baseDir, l.Prefix+".lock"))
		l.lock.Close()
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

// killInit sends SIGKILL to the host's pid 1, which takes every process of
// its pid namespace along (a namespace's init ignores SIGTERM, and so does
// unshare). unshare then reaps it and exits: killing unshare first would
// leave pid 1 a zombie until the machine's init reaps it.
func (h *Host) killInit() {
	switch {
	case h.initPID > 0:
		_ = syscall.Kill(h.initPID, syscall.SIGKILL)
	case h.holder != nil: // boot failed before pid 1 was known
		_ = h.holder.Process.Signal(syscall.SIGKILL)
	}
}

// waitHolder waits for unshare to exit, killing it if it lingers (its
// --kill-child then kills pid 1).
func (h *Host) waitHolder() error {
	if h.exited == nil {
		return nil
	}
	select {
	case <-h.exited:
		return nil
	case <-time.After(5 * time.Second):
	}
	_ = h.holder.Process.Signal(syscall.SIGKILL)
	select {
	case <-h.exited:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("%s: holder pid %d survives SIGKILL", h.Name, h.holder.Process.Pid)
	}
}
