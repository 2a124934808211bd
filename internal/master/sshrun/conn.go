package sshrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nodejoin/nodejoin/internal/sshkeys"
)

// Config says where and how to connect. The zero value of every field but
// Host is usable.
type Config struct {
	Host string // node name or address, as given to ssh
	Port int    // 0: the operator's ssh_config, else 22
	User string // "": the operator's ssh_config, else the local user
	// Address, if set, is where ssh connects instead (its HostName, with
	// no proxy), as for a node reached through its callback tunnel on the
	// master's localhost. Host still names the node: its host key is
	// looked up and checked under Host (HostKeyAlias), never under
	// Address:Port, which another node may have held before.
	Address string

	// HostKeyFingerprints pins the node's host key: the connection is made
	// only if the node presents a key with one of these fingerprints
	// ("SHA256:..."). With pins, known_hosts files are not consulted.
	HostKeyFingerprints []string
	// AcceptNew trusts the key of a host that no known_hosts file lists.
	AcceptNew bool
	// KnownHostsFiles are searched for the host in addition to the files
	// the operator's ssh_config names (e.g. the cluster's known_hosts).
	KnownHostsFiles []string
	// ClusterKeys are the cluster's host keys, which every node presents
	// once prepare-node-join has run on it. They show that the host is one
	// of the cluster's machines, not which one: they are trusted only with
	// TrustClusterKeys, and otherwise named in the refusal.
	ClusterKeys []HostKey
	// TrustClusterKeys trusts ClusterKeys for this host (with or without
	// pins), as the master does for a node it has recorded.
	TrustClusterKeys bool

	// IdentityFiles, if set, are the keys ssh offers, in order, instead
	// of its default ones (a rotation of the master's root key offers the
	// new and the old).
	IdentityFiles []string

	ConnectTimeout time.Duration // TCP connect and SSH handshake; default 10s
	SSH            string        // ssh binary; default "ssh" on PATH
	SSHKeygen      string        // ssh-keygen binary; default "ssh-keygen" on PATH
	Log            *slog.Logger
}

// Conn is one authenticated SSH connection (a ControlMaster) to a node.
type Conn struct {
	cfg      Config
	dir      string // private 0700 directory: control socket, known_hosts, helper
	ctl      string // control socket path
	key      HostKey
	master   *exec.Cmd
	done     chan struct{} // closed when the master exits
	stderr   *syncBuffer
	attempts int

	mu    sync.Mutex
	acker *acker // until the first session (quickack.go)
}

// Result is the outcome of one remote program.
type Result struct {
	Stdout []byte
	Stderr []byte
	Status int // the remote program's exit status
}

// maxOutput bounds what Run keeps of a remote program's output.
const maxOutput = 8 << 20

var hostRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:%-]*$`)
var userRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// Dial opens the connection: host key verified in the handshake, then
// authentication with whatever the operator's ssh would use (BatchMode: no
// prompts). ctx bounds the whole dial.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	if !hostRE.MatchString(cfg.Host) {
		return nil, fmt.Errorf("%q: not a host name or address", cfg.Host)
	}
	if cfg.Address != "" && !hostRE.MatchString(cfg.Address) {
		return nil, fmt.Errorf("%q: not a host name or address", cfg.Address)
	}
	if cfg.User != "" && !userRE.MatchString(cfg.User) {
		return nil, fmt.Errorf("%q: not a user name", cfg.User)
	}
	for _, p := range cfg.HostKeyFingerprints {
		if !strings.HasPrefix(p, "SHA256:") || len(p) != len("SHA256:")+43 {
			return nil, fmt.Errorf("%q: not a SHA256 fingerprint (ssh-keygen -lf prints SHA256:<43 characters>)", p)
		}
	}
	if cfg.SSH == "" {
		cfg.SSH = "ssh"
	}
	if cfg.SSHKeygen == "" {
		cfg.SSHKeygen = "ssh-keygen"
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	dir, err := os.MkdirTemp("", "nodejoin-ssh-")
	if err != nil {
		return nil, fmt.Errorf("creating the ssh control directory: %w", err)
	}
	c := &Conn{cfg: cfg, dir: dir, ctl: filepath.Join(dir, "c")}
	if err := c.dial(ctx); err != nil {
		os.RemoveAll(dir)
		// The deadline may strike in any step (ssh -G, ssh-keygen, the
		// handshake); whichever it was, the node did not answer in time.
		if ctx.Err() != nil && !errors.Is(err, ErrTimeout) {
			return nil, fmt.Errorf("%w: connecting to %s: %w", ErrTimeout, cfg.Host, ctx.Err())
		}
		return nil, err
	}
	return c, nil
}

// HostKey is the host key the node presented and that was trusted.
func (c *Conn) HostKey() HostKey { return c.key }

// Attempts is how many TCP connections Dial made (1 unless a pin named a
// key type the server does not offer first).
func (c *Conn) Attempts() int { return c.attempts }

// target is the common tail of every ssh command line: address, port,
// user, host.
func (c *Conn) target() []string {
	var a []string
	if c.cfg.Address != "" {
		// On the command line, so first: they win over ssh_config. The
		// alias makes ssh -G report the name to look the key up under.
		a = append(a, "-o", "HostName="+c.cfg.Address, "-o", "HostKeyAlias="+c.cfg.Host, "-o", "ProxyCommand=none")
	}
	if c.cfg.Port != 0 {
		a = append(a, "-p", strconv.Itoa(c.cfg.Port))
	}
	if c.cfg.User != "" {
		a = append(a, "-l", c.cfg.User)
	}
	return append(a, "--", c.cfg.Host)
}

func (c *Conn) dial(ctx context.Context) error {
	var known, revoked []knownEntry
	// With pins no known_hosts file is read, so ssh -G is not asked
	// where they are.
	if len(c.cfg.HostKeyFingerprints) == 0 {
		ec, err := readEffectiveConfig(ctx, c.cfg.SSH, c.target())
		if err != nil {
			return err
		}
		names := []string{ec.lookupName()}
		if names[0] != c.cfg.Host {
			names = append(names, c.cfg.Host)
		}
		files := append(slices.Clone(ec.knownFiles), c.cfg.KnownHostsFiles...)
		seen := map[string]bool{}
		for _, name := range names {
			entries, err := findKnown(ctx, c.cfg.SSHKeygen, name, files)
			if err != nil {
				return err
			}
			for _, e := range entries {
				id := e.marker + " " + e.key.Type + " " + e.key.Base64
				if seen[id] {
					continue
				}
				seen[id] = true
				switch e.marker {
				case "":
					known = append(known, e)
				case "@revoked":
					revoked = append(revoked, e)
				}
			}
		}
	}
	pins := slices.Clone(c.cfg.HostKeyFingerprints)
	if c.cfg.TrustClusterKeys {
		for _, k := range c.cfg.ClusterKeys {
			if len(pins) > 0 {
				pins = append(pins, k.Fingerprint())
			} else {
				known = append(known, knownEntry{key: k, file: "cluster"})
			}
		}
	}
	alias := c.cfg.Host
	var kh strings.Builder
	for _, e := range revoked {
		kh.WriteString("@revoked " + e.key.Line(alias) + "\n")
	}
	for _, e := range known {
		kh.WriteString(e.key.Line(alias) + "\n")
	}
	files := map[string]string{
		"known_hosts": kh.String(),
		"alias":       alias + "\n",
		"pins":        strings.Join(pins, "\n"),
	}
	if c.cfg.AcceptNew && len(known) == 0 && len(c.cfg.HostKeyFingerprints) == 0 {
		files["accept-new"] = ""
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(c.dir, name), []byte(content), 0o600); err != nil { //nolint:forbidigo // private temp dir, not a node or master file
			return fmt.Errorf("writing the ssh control directory: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(c.dir, "helper"), []byte(helperScript), 0o700); err != nil { //nolint:forbidigo // see above
		return fmt.Errorf("writing the ssh control directory: %w", err)
	}
	c.cfg.Log.Debug("host key trust", "host", c.cfg.Host, "known", len(known), "revoked", len(revoked),
		"pins", len(c.cfg.HostKeyFingerprints), "accept_new", c.cfg.AcceptNew, "cluster_keys", c.cfg.TrustClusterKeys)

	// Without a pin, one attempt. With a pin, the server presents the key
	// type the client prefers; if that key is not pinned, ask in turn for
	// the other families the server may have.
	tried := map[string]bool{}
	algorithms := ""
	for {
		before := len(readOffered(c.dir))
		c.attempts++
		err := c.startMaster(ctx, algorithms)
		if err == nil {
			offered := readOffered(c.dir)
			if len(offered) > before {
				c.key = offered[len(offered)-1]
			}
			return nil
		}
		offered := readOffered(c.dir)
		var hke *HostKeyError
		if !errors.As(err, &hke) || len(c.cfg.HostKeyFingerprints) == 0 {
			if hke != nil {
				c.classify(hke, offered, known, revoked)
			}
			return err
		}
		if len(offered) > before {
			tried[sshkeys.FamilyOf(offered[len(offered)-1].Type)] = true
		} else if algorithms != "" {
			// "no matching host key type": this family is not offered.
			tried[familyOf(algorithms)] = true
		} else {
			c.classify(hke, offered, known, revoked)
			return err
		}
		algorithms = ""
		for _, f := range familyAlgorithms {
			if !tried[f.family] {
				tried[f.family] = true
				algorithms = f.algorithms
				break
			}
		}
		if algorithms == "" {
			c.classify(hke, offered, known, revoked)
			return err
		}
		c.cfg.Log.Debug("offered host key not pinned; asking for another key type", "host", c.cfg.Host, "algorithms", algorithms)
	}
}

func familyOf(algorithms string) string {
	for _, f := range familyAlgorithms {
		if f.algorithms == algorithms {
			return f.family
		}
	}
	return ""
}

// classify fills in a host-key refusal from what the helper saw.
func (c *Conn) classify(e *HostKeyError, offered []HostKey, known, revoked []knownEntry) {
	e.Host = c.cfg.Host
	e.Offered = nil
	seen := map[string]bool{}
	for _, k := range offered {
		fp := k.Fingerprint()
		if !seen[fp] {
			seen[fp] = true
			e.Offered = append(e.Offered, fp)
		}
	}
	cluster := map[string]bool{}
	for _, k := range c.cfg.ClusterKeys {
		cluster[k.Fingerprint()] = true
	}
	switch {
	case len(offered) == 0:
		e.Problem = HostKeyNoOffer
	case slices.ContainsFunc(revoked, func(r knownEntry) bool { return seen[r.key.Fingerprint()] }):
		e.Problem = HostKeyRevoked
	case !c.cfg.TrustClusterKeys && slices.ContainsFunc(e.Offered, func(fp string) bool { return cluster[fp] }):
		e.Problem = HostKeyCluster
		e.Offered = slices.DeleteFunc(e.Offered, func(fp string) bool { return !cluster[fp] })
		e.Known = c.cfg.HostKeyFingerprints
	case len(c.cfg.HostKeyFingerprints) > 0:
		e.Problem = HostKeyNotPinned
		e.Known = c.cfg.HostKeyFingerprints
	case len(known) > 0:
		e.Problem = HostKeyChanged
		for _, k := range known {
			e.Known = append(e.Known, k.key.Fingerprint())
		}
	default:
		e.Problem = HostKeyUnknown
	}
}

// masterArgs is the ControlMaster's command line. Nothing secret is on it.
func (c *Conn) masterArgs(algorithms string) []string {
	a := []string{
		"-M", "-N", "-T",
		"-S", c.ctl,
		"-o", "ControlMaster=yes",
		"-o", "ControlPersist=no",
		"-o", "BatchMode=yes",
		"-o", "ConnectTimeout=" + strconv.Itoa(int((c.cfg.ConnectTimeout+time.Second-1)/time.Second)),
		"-o", "ServerAliveInterval=15",
		"-o", "ServerAliveCountMax=3",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + filepath.Join(c.dir, "known_hosts"),
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "HostKeyAlias=" + c.cfg.Host,
		"-o", "KnownHostsCommand=/bin/sh \"" + strings.ReplaceAll(filepath.Join(c.dir, "helper"), "%", "%%") + "\" %I %t %K %f",
		"-o", "CheckHostIP=no",
		"-o", "UpdateHostKeys=no",
		"-o", "HashKnownHosts=no",
		"-o", "FingerprintHash=sha256",
		"-o", "ClearAllForwardings=yes",
	}
	if algorithms != "" {
		a = append(a, "-o", "HostKeyAlgorithms="+algorithms)
	}
	for _, f := range c.cfg.IdentityFiles {
		a = append(a, "-o", "IdentityFile="+strings.ReplaceAll(f, "%", "%%"))
	}
	return append(a, c.target()...)
}

func (c *Conn) startMaster(ctx context.Context, algorithms string) error {
	cmd := exec.Command(c.cfg.SSH, c.masterArgs(algorithms)...)
	stderr := &syncBuffer{}
	cmd.Stdin = nil
	cmd.Stdout = nil
	cmd.Stderr = stderr
	// Its own process group: a terminal's ^C reaches node-add, which then
	// closes the connection itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.cfg.Log.Debug("starting ssh master", "host", c.cfg.Host, "argv", cmd.Args)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%w: starting %s: %w", ErrConnection, c.cfg.SSH, err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	// The socket appears once the node accepted the login; a stat every
	// 2 ms costs nothing next to the handshake and finds it soon after.
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return c.masterFailed(waitErr, stderr.String())
		case <-ctx.Done():
			signalGroup(cmd, syscall.SIGKILL)
			<-done
			return fmt.Errorf("%w: connecting to %s: %w", ErrTimeout, c.cfg.Host, ctx.Err())
		case <-tick.C:
			if fi, err := os.Stat(c.ctl); err == nil && fi.Mode().Type() == fs.ModeSocket {
				c.master, c.done, c.stderr = cmd, done, stderr
				c.acker = grabAcker(cmd.Process.Pid)
				_ = c.acker.ack()
				return nil
			}
		}
	}
}

// masterFailed turns ssh's failure into one of the sentinel errors.
func (c *Conn) masterFailed(waitErr error, stderr string) error {
	msg := lastMeaningfulLine(stderr)
	switch {
	case strings.Contains(stderr, "Host key verification failed"),
		strings.Contains(stderr, "REMOTE HOST IDENTIFICATION HAS CHANGED"),
		strings.Contains(stderr, "no matching host key type found"):
		return &HostKeyError{Host: c.cfg.Host}
	case strings.Contains(stderr, "Permission denied"),
		strings.Contains(stderr, "Too many authentication failures"):
		return fmt.Errorf("%w: %s", ErrAuth, msg)
	case strings.Contains(stderr, "Connection refused"),
		strings.Contains(stderr, "Connection timed out"),
		strings.Contains(stderr, "No route to host"),
		strings.Contains(stderr, "Network is unreachable"),
		strings.Contains(stderr, "Could not resolve hostname"),
		strings.Contains(stderr, "Name or service not known"),
		strings.Contains(stderr, "kex_exchange_identification"),
		strings.Contains(stderr, "Connection closed by"),
		strings.Contains(stderr, "Connection reset by"):
		return fmt.Errorf("%w: %s", ErrUnreachable, msg)
	}
	if msg == "" {
		msg = fmt.Sprint(waitErr)
	}
	return fmt.Errorf("%w: %s", ErrConnection, msg)
}

// lastMeaningfulLine is the last line of ssh's stderr that is not a
// warning about known_hosts, which we manage.
func lastMeaningfulLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l != "" && !strings.HasPrefix(l, "Warning: Permanently added") {
			return l
		}
	}
	return ""
}

// sessionWaitDelay bounds how long a session's output may go on after its
// ssh exited. The ControlMaster, not the mux client, reads and writes the
// session's descriptors (ssh -S passes them over the control socket), and
// it closes them only once it has written out what the node sent: on a
// loaded master (a hundred joins on two cores) that came seconds after the
// client had exited 0. The bound is for output that something keeps open
// for good; ctx's end stops the wait too.
const sessionWaitDelay = 30 * time.Second

// Run runs argv on the node as a session over the connection, with stdin
// as its standard input. argv goes on the remote command line, so it must
// hold no secret; documents go in stdin. A remote program that exits
// non-zero is not an error: its status is in the Result. ssh's own
// failure (exit 255), a lost connection and ctx's end are errors.
func (c *Conn) Run(ctx context.Context, argv []string, stdin []byte) (*Result, error) {
	if len(argv) == 0 {
		return nil, errors.New("no remote program given")
	}
	args := []string{
		"-S", c.ctl,
		"-o", "ControlMaster=no",
		// If the master is gone, fail instead of opening a second connection.
		"-o", "ProxyCommand=false",
		"-o", "BatchMode=yes",
		"-T",
	}
	args = append(args, c.target()...)
	args = append(args, ShellQuote(argv))
	cmd := exec.CommandContext(ctx, c.cfg.SSH, args...)
	stdout, stderr := &capBuffer{max: maxOutput}, &capBuffer{max: maxOutput}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 3 * time.Second // for ssh itself to exit after Cancel
	start := time.Now()
	if a := c.takeAcker(); a != nil {
		defer a.ackWhileOpening()()
	}
	err := runSession(ctx, cmd, stdin, stdout, stderr)
	c.cfg.Log.Debug("remote program finished", "host", c.cfg.Host, "program", argv[0], "elapsed", time.Since(start), "err", err)
	res := &Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if ctx.Err() != nil {
		return res, fmt.Errorf("%w: running %s on %s: %w", ErrTimeout, argv[0], c.cfg.Host, ctx.Err())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.ExitCode() == 255:
		// ssh exits 255 both when the connection fails and when the remote
		// program dies of a signal (no exit status); the master tells which.
		if c.alive() {
			return res, fmt.Errorf("%w: %s on %s: %s", ErrNoExitStatus, argv[0], c.cfg.Host, lastMeaningfulLine(string(res.Stderr)))
		}
		return res, fmt.Errorf("%w: running %s on %s: %s", ErrConnection, argv[0], c.cfg.Host, lastMeaningfulLine(string(res.Stderr)))
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		res.Status = ee.ExitCode()
	default:
		return res, fmt.Errorf("%w: running %s on %s: %w", ErrConnection, argv[0], c.cfg.Host, err)
	}
	if stdout.truncated || stderr.truncated {
		return res, fmt.Errorf("%w: %s on %s wrote more than %d bytes", ErrConnection, argv[0], c.cfg.Host, maxOutput)
	}
	return res, nil
}

// takeAcker hands the connection's acker to its first session.
func (c *Conn) takeAcker() *acker {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.acker
	c.acker = nil
	return a
}

// dropAcker closes the acker if no session took it.
func (c *Conn) dropAcker() { c.takeAcker().close() }

// alive reports whether the master connection still answers.
func (c *Conn) alive() bool {
	check := exec.Command(c.cfg.SSH, append([]string{"-S", c.ctl, "-O", "check"}, c.target()...)...)
	return check.Run() == nil
}

// Close ends the master connection and removes the private directory.
func (c *Conn) Close() error {
	if c.master == nil {
		return os.RemoveAll(c.dir)
	}
	c.dropAcker()
	c.stopMaster()
	c.master = nil
	return os.RemoveAll(c.dir)
}

// stopMaster ends the master with SIGTERM, as `ssh -O exit` would (it
// removes its socket and closes the connection), without a third ssh
// process per node. Again every 20 ms: OpenSSH 9.2's master does not
// always end on the first (in the lab about one join in fifteen of a
// 10-node run waited for the kill five seconds on); it ends on a later one.
func (c *Conn) stopMaster() {
	signalGroup(c.master, syscall.SIGTERM)
	again := time.NewTicker(20 * time.Millisecond)
	defer again.Stop()
	kill := time.After(5 * time.Second)
	for {
		select {
		case <-c.done:
			return
		case <-again.C:
			signalGroup(c.master, syscall.SIGTERM)
		case <-kill:
			signalGroup(c.master, syscall.SIGKILL)
			<-c.done
			return
		}
	}
}

// signalGroup signals the master's process group (its own, Setpgid):
// an ssh that is a wrapper script has the real one as its child, which
// holds the stderr pipe Wait waits for.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	_ = syscall.Kill(-cmd.Process.Pid, sig)
}

// ShellQuote joins argv into one string for the remote shell, quoting each
// word that needs it, as ssh passes its command to the login shell.
func ShellQuote(argv []string) string {
	words := make([]string, len(argv))
	for i, w := range argv {
		if w != "" && safeWord.MatchString(w) {
			words[i] = w
		} else {
			words[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
	}
	return strings.Join(words, " ")
}

var safeWord = regexp.MustCompile(`^[A-Za-z0-9_./=:,+@%-]+$`)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() < maxOutput {
		s.b.Write(p)
	}
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runSession runs cmd with stdin as its input and its output into stdout
// and stderr, through pipes of its own, the output read until its end
// (sessionWaitDelay): exec's pipes would be given up after WaitDelay, with
// what the ControlMaster had not written yet lost.
func runSession(ctx context.Context, cmd *exec.Cmd, stdin []byte, stdout, stderr io.Writer) error {
	in, feed, err := os.Pipe()
	if err != nil {
		return err
	}
	defer in.Close()
	defer feed.Close() // unblocks the feeding of input nobody reads
	cmd.Stdin = in
	childEnds := []*os.File{in}
	var readers []*os.File
	var copied sync.WaitGroup
	for _, o := range []struct {
		to  io.Writer
		set *io.Writer
	}{{stdout, &cmd.Stdout}, {stderr, &cmd.Stderr}} {
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		defer r.Close()
		defer w.Close()
		*o.set = w
		childEnds, readers = append(childEnds, w), append(readers, r)
		copied.Go(func() { _, _ = io.Copy(o.to, r) })
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	for _, f := range childEnds {
		f.Close() // ssh holds its copies
	}
	go func() {
		_, _ = feed.Write(stdin)
		feed.Close()
	}()
	err = cmd.Wait()
	done := make(chan struct{})
	go func() { copied.Wait(); close(done) }()
	t := time.NewTimer(sessionWaitDelay)
	defer t.Stop()
	select {
	case <-done:
		return err
	case <-ctx.Done():
	case <-t.C:
	}
	for _, r := range readers {
		r.Close() // ends the copies
	}
	<-done
	if err == nil {
		err = fmt.Errorf("the session's output did not end within %v of ssh's exit", sessionWaitDelay)
	}
	return err
}

// capBuffer keeps at most max bytes and remembers that it dropped some.
type capBuffer struct {
	b         bytes.Buffer
	max       int
	truncated bool
}

func (c *capBuffer) Write(p []byte) (int, error) {
	if room := c.max - c.b.Len(); len(p) > room {
		c.b.Write(p[:max(room, 0)])
		c.truncated = true
		return len(p), nil
	}
	return c.b.Write(p)
}

func (c *capBuffer) Bytes() []byte { return c.b.Bytes() }
