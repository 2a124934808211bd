package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Host is one lab machine: a network namespace plus a holder process whose
// mount, UTS and PID namespaces every command and daemon of the host shares.
type Host struct {
	Name string

	lab     *Lab
	ns      string     // network namespace
	ip      netip.Addr // on eth0
	dir     string     // the host's tree in the lab dir
	holder  *exec.Cmd  // ip netns exec ... unshare ... (in the root pid namespace)
	initPID int        // the host's pid 1, as the root pid namespace sees it
	exited  chan struct{}

	shareRSA   bool // copy the process's shared RSA host key (Options.ShareRSAHostKey)
	hideGaneti bool // cover ganetiDirs (not Options.Ganeti)
	// writableEtc: /etc is an overlay of the host's own, left writable
	// (Options.WritableEtc).
	writableEtc bool
	avahi       bool // its own dbus-daemon and avahi-daemon (Options.Avahi)
}

// ganetiDirs are where Ganeti's package puts its programs and daemon-util.
var ganetiDirs = []string{"/usr/lib/ganeti", "/usr/share/ganeti"}

// rootPath is PATH for commands in a host: root's PATH as Debian's sshd sets
// it, so Run and SSH sessions find the same programs. /usr/local/sbin is the
// host's bin dir.
const rootPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// binds maps host paths to the host's tree in the lab dir (relative). Order
// matters for Path: the first prefix that matches wins.
var binds = [][2]string{
	{"/etc/ssh", "etc/ssh"},
	{"/root", "root"},
	{"/var/lib/ganeti", "var/lib/ganeti"},
	{"/etc/nodejoin", "etc/nodejoin"},
	{"/var/lib/nodejoin", "var/lib/nodejoin"},
	{"/var/lock", "var/lock"},
	{"/run/lock", "var/lock"},     // Debian: /var/lock -> /run/lock; not mounted twice
	{"/etc/ganeti", "etc/ganeti"}, // Ganeti's version links (lib, share) and hooks
	{"/var/log", "var/log"},       // every log of the host: sshd, noded, Ganeti's daemons
	{"/usr/local/sbin", "bin"},
	{"/etc/hosts", "etc/hosts"}, // a file: every lab host by name
}

// WritableDirs are the host's paths that are its own, bind-mounted from the
// lab dir (Path maps them there), besides the tmpfs mounts that die with the
// host: /run (and so /var/run and /var/lock), /tmp, /var/tmp and /dev/shm.
// Everything else of the real root filesystem is mounted read-only in the
// host, so that a program that writes anywhere else fails there (EROFS)
// instead of leaving a file on the machine.
func WritableDirs() []string {
	var dirs []string
	for _, b := range binds {
		if b[0] != "/run/lock" && b[0] != "/etc/hosts" {
			dirs = append(dirs, b[0])
		}
	}
	return dirs
}

// IP returns the host's address on the lab's bridge.
func (h *Host) IP() netip.Addr { return h.ip }

// Namespace returns the host's network namespace, for `ip -n`.
func (h *Host) Namespace() string { return h.ns }

// InitPID returns the root-namespace pid of the host's pid 1.
func (h *Host) InitPID() int { return h.initPID }

// Path returns where the host's path p is on the real filesystem: in the lab
// dir for the bind-mounted trees (/etc/ssh, /root, /var/lib/ganeti,
// /etc/nodejoin, /var/lib/nodejoin, /var/lock, /etc/ganeti, /var/log,
// /usr/local/sbin) and for /etc/hosts, else through
// /proc/<pid 1>/root, which resolves in the host's mount namespace (e.g.
// /run/sshd.pid) while the host runs.
func (h *Host) Path(p string) string {
	p = path.Clean("/" + p)
	if h.avahi && (p == "/etc/avahi" || strings.HasPrefix(p, "/etc/avahi/")) {
		return filepath.Join(h.dir, avahiDir, strings.TrimPrefix(p, "/etc/avahi"))
	}
	for _, b := range binds {
		if p == b[0] || strings.HasPrefix(p, b[0]+"/") {
			return filepath.Join(h.dir, b[1], strings.TrimPrefix(p, b[0]))
		}
	}
	return fmt.Sprintf("/proc/%d/root%s", h.initPID, p)
}

func (h *Host) binDir() string { return filepath.Join(h.dir, "bin") }

// sshdLog is where the host's sshd logs, in the host.
const sshdLog = "/var/log/sshd.log"

// prepare builds the host's tree: directories, host keys, sshd config, the
// helper scripts and, on master, root's SSH key. It runs in the root
// namespaces on lab-dir paths, before the host exists.
func (h *Host) prepare() error {
	for _, d := range []string{"etc/ssh/sshd_config.d", "etc/ssh/ssh_config.d", "root/.ssh", "var/lib/ganeti",
		"etc/nodejoin", "var/lib/nodejoin", "var/lock", "var/log", "etc/ganeti", "bin"} {
		if err := os.MkdirAll(filepath.Join(h.dir, d), 0o755); err != nil {
			return err
		}
	}
	// Modes of a Debian install; sshd's StrictModes checks /root and ~/.ssh.
	for d, mode := range map[string]os.FileMode{"root": 0o700, "root/.ssh": 0o700, "var/lock": os.ModeSticky | 0o777} {
		if err := os.Chmod(filepath.Join(h.dir, d), mode); err != nil {
			return err
		}
	}
	// The machine's /var/log directories, empty: packages make theirs at
	// install time (Ganeti's daemons do not start without /var/log/ganeti).
	if err := mirrorDirs("/var/log", h.Path("/var/log")); err != nil {
		return fmt.Errorf("making /var/log: %w", err)
	}
	// Ganeti's package puts its version links and hook scripts in
	// /etc/ganeti; each host gets its own copy, which Ganeti may rewrite.
	if _, err := os.Stat("/etc/ganeti"); err == nil {
		if out, err := exec.Command("cp", "-a", "/etc/ganeti/.", h.Path("/etc/ganeti")).CombinedOutput(); err != nil {
			return fmt.Errorf("copying /etc/ganeti: %s", firstLine(out, err))
		}
	}
	if h.avahi {
		if err := h.prepareAvahi(); err != nil {
			return err
		}
	}
	for _, f := range []string{"/etc/ssh/ssh_config", "/etc/ssh/moduli"} {
		if err := copyFile(f, h.Path(f), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	// Fresh Debian host keys: ssh-keygen's defaults (RSA 3072), "root@host".
	keys := [][]string{
		{"-t", "ed25519", "-f", h.Path("/etc/ssh/ssh_host_ed25519_key")},
	}
	if h.shareRSA {
		if err := writeSharedRSAKey(h.Path("/etc/ssh/ssh_host_rsa_key")); err != nil {
			return err
		}
	} else {
		keys = append(keys, []string{"-t", "rsa", "-f", h.Path("/etc/ssh/ssh_host_rsa_key")})
	}
	if h.Name == "master" {
		keys = append(keys, []string{"-t", "ed25519", "-f", h.Path("/root/.ssh/id_ed25519")})
	}
	for _, k := range keys {
		args := append([]string{"-q", "-N", "", "-C", "root@" + h.Name}, k...)
		if out, err := exec.Command("ssh-keygen", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ssh-keygen %s: %s", strings.Join(k, " "), firstLine(out, err))
		}
	}
	files := []struct {
		path, content string
		mode          os.FileMode
	}{
		{"/etc/ssh/sshd_config", sshdConfig(h.Name, h.ip.String()), 0o644},
		{"/etc/hosts", h.lab.hostsFile(), 0o644},
		{"/root/.ssh/authorized_keys", "", 0o600},
		{"/usr/local/sbin/nj-restart-sshd", restartScript(sshdLog), 0o755},
		{"/usr/local/sbin/nj-check-sshd", checkScript, 0o755},
	}
	for _, f := range files {
		if err := os.WriteFile(h.Path(f.path), []byte(f.content), f.mode); err != nil {
			return err
		}
	}
	return nil
}

// mountPlan decides how the host's mount namespace is built. A bind target
// missing on the real system gets a mount point without touching the real
// root filesystem: a tmpfs over /var/lib (ganeti, nodejoin), else an overlay
// over its parent with the upper layer in the lab dir (/etc/nodejoin,
// /usr/local/sbin: a tmpfs over /etc or /usr/local would hide files the host
// needs, such as /etc/passwd).
func (h *Host) mountPlan() (mountPlan, error) {
	p := mountPlan{hostname: h.Name}
	overlaid := map[string]bool{}
	addOverlay := func(dir string, rw bool) error {
		overlaid[dir] = true
		o := filepath.Join(h.dir, "ovl", strings.ReplaceAll(strings.Trim(dir, "/"), "/", "_"))
		p.overlays = append(p.overlays, overlay{dir: dir, upper: o + "/u", work: o + "/w", rw: rw})
		for _, d := range []string{o + "/u", o + "/w"} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		return nil
	}
	if h.writableEtc {
		if err := addOverlay("/etc", true); err != nil {
			return p, err
		}
	}
	for _, b := range binds {
		if b[0] == "/run/lock" {
			continue
		}
		if _, err := os.Stat(b[0]); err == nil {
			p.binds = append(p.binds, [2]string{filepath.Join(h.dir, b[1]), b[0]})
			continue
		}
		parent := path.Dir(b[0])
		switch {
		case parent == "/var/lib":
			p.tmpfsVarLib = true
		case !overlaid[parent]:
			if fi, err := os.Stat(parent); err != nil || !fi.IsDir() {
				return p, fmt.Errorf("cannot make mount point %s: %s is not a directory on this machine", b[0], parent)
			}
			if err := addOverlay(parent, false); err != nil {
				return p, err
			}
		}
		p.mkdirs = append(p.mkdirs, b[0])
		p.binds = append(p.binds, [2]string{filepath.Join(h.dir, b[1]), b[0]})
	}
	if h.avahi {
		p.binds = append(p.binds, [2]string{filepath.Join(h.dir, avahiDir), "/etc/avahi"})
	}
	if p.tmpfsVarLib { // the tmpfs hides both, whichever was missing
		p.mkdirs = append(p.mkdirs, "/var/lib/ganeti", "/var/lib/nodejoin")
	}
	if h.hideGaneti {
		for _, d := range ganetiDirs {
			if fi, err := os.Stat(d); err == nil && fi.IsDir() {
				p.hide = append(p.hide, d)
			}
		}
	}
	return p, nil
}

// boot starts the host's holder process, waits until it has built the mount
// namespace, and starts sshd.
func (h *Host) boot() error {
	plan, err := h.mountPlan()
	if err != nil {
		return err
	}
	// ip netns exec enters the network namespace and remounts /sys for it;
	// it then execs unshare, so the pid stays the same.
	cmd := exec.Command("ip", "netns", "exec", h.ns,
		"unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--mount", "--uts", "--propagation", "private",
		"sh", "-c", plan.script())
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	logf, err := os.Create(filepath.Join(h.dir, "holder.log"))
	if err != nil {
		w.Close()
		return err
	}
	cmd.Stdout, cmd.Stderr = w, logf
	// Own process group: a terminal's ^C reaches the test, whose handler
	// closes the lab, not the holder. Pdeathsig: if the test process dies
	// anyway, unshare is killed and --kill-child kills the host's pid 1.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	w.Close()
	logf.Close()
	if err != nil {
		return err
	}
	h.holder = cmd
	h.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(h.exited) }()

	_ = r.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(r).ReadString('\n')
	if line != "ready\n" {
		log, _ := os.ReadFile(filepath.Join(h.dir, "holder.log"))
		return fmt.Errorf("host setup failed (%w): %s", err, strings.TrimSpace(string(log)))
	}
	if h.initPID, err = childPID(cmd.Process.Pid); err != nil {
		return err
	}
	if h.avahi {
		if err := h.StartAvahi(); err != nil {
			return err
		}
	}
	return h.StartSSHD()
}

// childPID returns the only child of pid: unshare's forked child is the
// pid namespace's init.
func childPID(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 1 {
		return 0, fmt.Errorf("unshare pid %d has children %q, want one", pid, f)
	}
	return strconv.Atoi(f[0])
}

// Run runs argv inside the host as root, with HOME=/root and PATH starting
// with the host's bin dir, and stdin as its standard input. err is nil when
// the command ran and exited, whatever its exit code; it is set when the
// command could not run, was killed, or ctx ended (exitCode is then -1).
func (h *Host) Run(ctx context.Context, stdin []byte, argv ...string) (stdout, stderr []byte, exitCode int, err error) {
	if h.initPID == 0 || h.lab.closed() {
		return nil, nil, -1, fmt.Errorf("host %s is not running", h.Name)
	}
	if len(argv) == 0 {
		return nil, nil, -1, errors.New("run: no command")
	}
	cmd := h.Command(ctx, argv...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.WaitDelay = 2 * time.Second // a daemon left holding stdout must not hang Run
	err = cmd.Run()
	if ctx.Err() != nil {
		return o.Bytes(), e.Bytes(), -1, fmt.Errorf("%s: %s: %w", h.Name, argv[0], ctx.Err())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() {
		return o.Bytes(), e.Bytes(), ee.ExitCode(), nil
	}
	if err != nil {
		return o.Bytes(), e.Bytes(), -1, fmt.Errorf("%s: %s: %w", h.Name, argv[0], err)
	}
	return o.Bytes(), e.Bytes(), 0, nil
}

// Command returns the command that runs argv inside the host as Run does,
// for a caller that wants its output as it comes (the demo shows node-add's
// progress on the terminal). The host must be running.
func (h *Host) Command(ctx context.Context, argv ...string) *exec.Cmd {
	return EnterCommand(ctx, h.initPID, argv...)
}

// EnterCommand is Command for the host whose pid 1 is initPID (InitPID), for
// a program that reaches the hosts of a lab another process keeps (qa/lab).
func EnterCommand(ctx context.Context, initPID int, argv ...string) *exec.Cmd {
	// nsenter forks the command into the host's pid namespace and waits for
	// it; setpriv's pdeathsig makes the command die with nsenter when ctx
	// kills nsenter.
	args := append([]string{"-t", strconv.Itoa(initPID), "-n", "-m", "-u", "-p", "--wd=/",
		"--", "setpriv", "--pdeathsig", "KILL", "--"}, argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.Env = []string{"PATH=" + rootPath, "HOME=/root", "USER=root", "LOGNAME=root", "LANG=C.UTF-8", "TERM=" + os.Getenv("TERM")}
	return cmd
}

// sh runs a shell script in the host and turns a non-zero exit into an error.
func (h *Host) sh(script string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, stderr, code, err := h.Run(ctx, nil, "sh", "-c", script)
	if err == nil && code != 0 {
		err = fmt.Errorf("%s: exit %d: %s", h.Name, code, strings.TrimSpace(string(stderr)))
	}
	return err
}

// StartSSHD starts the host's sshd and returns once it listens.
func (h *Host) StartSSHD() error {
	return h.sh(`pid=$(cat /run/sshd.pid 2>/dev/null || :)
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "sshd already runs as pid $pid" >&2; exit 1; fi
exec nj-restart-sshd`)
}

// StopSSHD stops the host's listening sshd (SIGTERM) and waits until it is
// gone. Like `systemctl stop ssh` with KillMode=process, open sessions stay.
func (h *Host) StopSSHD() error {
	return h.sh(`pid=$(cat /run/sshd.pid 2>/dev/null) || { echo "sshd is not running: no /run/sshd.pid" >&2; exit 1; }
kill -TERM "$pid"
i=0
while kill -0 "$pid" 2>/dev/null; do
	i=$((i + 1)); [ "$i" -le 250 ] || { echo "sshd pid $pid survives SIGTERM for 5s" >&2; exit 1; }
	sleep 0.02
done
rm -f /run/sshd.pid`)
}

// SSHDLog returns what the host's sshd has logged so far.
func (h *Host) SSHDLog() string {
	b, _ := os.ReadFile(h.Path(sshdLog))
	return string(b)
}

// CountSSHConnections counts the TCP connections the host's sshd accepted,
// from the "Connection from A port P on B port 22" lines of LogLevel VERBOSE.
func (h *Host) CountSSHConnections() int {
	n := 0
	for _, line := range strings.Split(h.SSHDLog(), "\n") {
		if i := strings.Index(line, "Connection from "); i >= 0 && strings.Contains(line[i:], " port ") {
			n++
		}
	}
	return n
}

// KnownHosts returns known_hosts lines, "<ip> <type> <key>", for the host
// keys now in the host's /etc/ssh.
func (h *Host) KnownHosts() ([]byte, error) {
	pubs, err := filepath.Glob(h.Path("/etc/ssh/ssh_host_*_key.pub"))
	if err != nil {
		return nil, err
	}
	sort.Strings(pubs)
	var b bytes.Buffer
	for _, p := range pubs {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		f := strings.Fields(string(data))
		if len(f) < 2 {
			return nil, fmt.Errorf("%s: not a public key", p)
		}
		fmt.Fprintf(&b, "%s %s %s\n", h.ip, f[0], f[1])
	}
	return b.Bytes(), nil
}

// InstallBinaries copies every regular file of dir into the host's bin dir
// (/usr/local/sbin in the host, first on root's PATH). Each file is written
// beside its target and renamed over it, so a running binary can be replaced.
func (h *Host) InstallBinaries(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		src := filepath.Join(dir, e.Name())
		fi, err := os.Stat(src)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		dst := filepath.Join(h.binDir(), e.Name())
		if err := copyFile(src, dst+".tmp", fi.Mode().Perm()|0o755); err != nil {
			return err
		}
		if err := os.Rename(dst+".tmp", dst); err != nil {
			return err
		}
	}
	return nil
}

// mirrorDirs makes under dst every directory under src, with its mode and
// owner, and no file.
func mirrorDirs(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			if err := os.Lchown(target, int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
		}
		return os.Chmod(target, fi.Mode().Perm()|fi.Mode()&os.ModeSticky)
	})
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
