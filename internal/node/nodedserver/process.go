package nodedserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nodejoin/nodejoin/internal/nodeconf"
)

// PidFile is the node path of the running daemon's pid file.
func PidFile(cfg *nodeconf.Config) string { return cfg.Path(filepath.Join(cfg.RunDir, "noded.pid")) }

// LogFile is the node path of the log a restarted daemon writes to.
func LogFile(cfg *nodeconf.Config) string { return cfg.Path(filepath.Join(cfg.LogDir, "noded.log")) }

// pidLock is the node path of the lock beside the pid file. The process
// holding it (flock, until it ends) owns the pid file; the lock is on a
// file of its own because the pid file is replaced by a rename, and a lock
// on the replaced file would no longer guard the name.
func pidLock(cfg *nodeconf.Config) string { return PidFile(cfg) + ".lock" }

// ErrRunning is returned by TakePidFile when another noded owns the pid file.
var ErrRunning = errors.New("noded already runs")

// TakePidFile makes this process the owner of the pid file: it takes the
// lock, then writes its pid (atomically: a reader sees the old pid or the
// new one). If another process holds the lock, it fails with ErrRunning
// and the other's pid, and touches nothing. release removes the pid file
// and lets go of the lock.
func TakePidFile(cfg *nodeconf.Config) (release func(), err error) {
	p := PidFile(cfg)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("creating the run directory: %w", err)
	}
	lock, err := os.OpenFile(pidLock(cfg), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the pid file lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			if pid, err := readPid(p); err == nil {
				return nil, fmt.Errorf("%w as PID %d", ErrRunning, pid)
			}
			return nil, fmt.Errorf("%w: another process holds %s", ErrRunning, pidLock(cfg))
		}
		return nil, fmt.Errorf("locking %s: %w", pidLock(cfg), err)
	}
	if err := writePid(p); err != nil {
		lock.Close()
		return nil, fmt.Errorf("writing the pid file: %w", err)
	}
	return func() {
		_ = os.Remove(p)
		lock.Close()
	}, nil
}

// writePid replaces the pid file with this process's pid atomically (a
// temporary file renamed over it), but not durably: no fsync. The pid
// file names a running process, which a crash ends; a pid file left by
// one is stale whatever it holds, as the lock says (mayRun), so
// txn.WriteFile's two fsyncs (the file, its directory) bought nothing.
func writePid(p string) error {
	if fi, err := os.Lstat(p); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", p)
	}
	t, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(t.Name()) // nothing once renamed
	_, err = t.WriteString(strconv.Itoa(os.Getpid()) + "\n")
	if err == nil {
		err = t.Chmod(0o644)
	}
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(t.Name(), p)
}

// mayRun says whether a process holds the pid file's lock. Without a lock
// file (a noded of a version that took none) only the pid can tell.
func mayRun(cfg *nodeconf.Config) bool {
	lock, err := os.OpenFile(pidLock(cfg), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return true
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return errors.Is(err, syscall.EWOULDBLOCK)
	}
	_ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	return false
}

func readPid(p string) (int, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("%s: not a pid", p)
	}
	return pid, nil
}

// isNoded says whether pid is a running noded (not a recycled pid).
func isNoded(pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := bytes.Split(cmdline, []byte{0})
	return len(args) > 0 && strings.Contains(filepath.Base(string(args[0])), "noded")
}

// Stop ends the noded of this root: SIGTERM, then SIGKILL after wait.
// It reports whether one was running.
func Stop(cfg *nodeconf.Config, wait time.Duration) (bool, error) {
	pid, err := readPid(PidFile(cfg))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil || !mayRun(cfg) || !isNoded(pid) {
		return false, nil // stale pid file: its owner has ended
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return false, fmt.Errorf("stopping noded (pid %d): %w", pid, err)
	}
	deadline := time.Now().Add(wait)
	for poll := newPoll(); time.Now().Before(deadline); {
		if !isNoded(pid) || isZombie(pid) {
			return true, nil
		}
		time.Sleep(poll.next())
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 100 && isNoded(pid) && !isZombie(pid); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	return true, nil
}

// poll is the wait between two looks at a daemon that stops: 1 ms
// doubling to 20 ms. It takes some milliseconds, and a restart is on
// every join's path (node-daemon-setup runs it), so a fixed 20 ms wait
// added most of its length to each.
type poll struct{ d time.Duration }

func newPoll() *poll { return &poll{d: time.Millisecond} }

func (p *poll) next() time.Duration {
	d := p.d
	p.d = min(2*p.d, 20*time.Millisecond)
	return d
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// "pid (comm) S ...": the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}

// ReadyFD is the descriptor on which a daemon StartDetached starts says
// that it listens: the first of the files it inherits after standard
// error, named to it by --ready-fd.
const ReadyFD = 3

// StartDetached starts exe with args as a daemon of its own: a new
// session, standard input from /dev/null, standard output and error
// appended to the log file (never the caller's: an ssh session would wait
// for them to close). It then waits until the daemon says, by one byte on
// a pipe it inherits as ReadyFD (NotifyReady), that its pid file names it
// and it listens, or fails with the tail of the log. Waiting on the pipe
// rather than looking at the pid file and connecting to the port until
// both answer costs no poll, no connection and no wasted wait: a restart
// is on every join's path (node-daemon-setup runs it).
func StartDetached(ctx context.Context, cfg *nodeconf.Config, exe string, args []string, port int) (int, error) {
	logPath := LogFile(cfg)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return 0, fmt.Errorf("creating the log directory: %w", err)
	}
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return 0, fmt.Errorf("opening the log: %w", err)
	}
	defer logf.Close()
	before, _ := logf.Seek(0, 2)
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("making the pipe noded tells it listens on: %w", err)
	}
	defer readyR.Close()
	cmd := exec.Command(exe, append(args, "--ready-fd", strconv.Itoa(ReadyFD))...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	cmd.ExtraFiles = []*os.File{readyW} // ReadyFD
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	// Only the daemon holds the write end now: its exit ends the read.
	_ = readyW.Close()
	if err != nil {
		return 0, fmt.Errorf("starting noded: %w", err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ready := make(chan bool, 1)
	go func() { n, _ := readyR.Read(make([]byte, 1)); ready <- n == 1 }()
	failed := func(err error) (int, error) {
		return 0, fmt.Errorf("noded exited at once (%w); its log %s ends:\n%s", err, logPath, logTail(logPath, before))
	}
	timedOut := func() (int, error) {
		_ = cmd.Process.Kill()
		return 0, fmt.Errorf("noded did not listen on port %d in time; its log %s ends:\n%s", port, logPath, logTail(logPath, before))
	}
	select {
	case ok := <-ready:
		if ok {
			return pid, nil
		}
		// The pipe closed without the byte: the daemon ended before it
		// listened, and its exit says how.
		select {
		case err := <-exited:
			return failed(err)
		case <-ctx.Done():
			return timedOut()
		}
	case err := <-exited:
		return failed(err)
	case <-ctx.Done():
		return timedOut()
	}
}

// NotifyReady tells the noded --restart that started this daemon
// (StartDetached) that it listens: one byte on fd, which it then closes.
func NotifyReady(fd int) error {
	f := os.NewFile(uintptr(fd), "the --ready-fd pipe")
	_, err := f.Write([]byte{'\n'})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Self returns the path to start this program again: the name it was
// started as, looked up on PATH as the caller did (so that a program
// installed through a link keeps its name), else the executable.
func Self() (string, error) {
	if p, err := exec.LookPath(os.Args[0]); err == nil {
		return filepath.Abs(p)
	}
	return os.Executable()
}

// logTail is the end of what the daemon wrote to its log since offset.
func logTail(p string, offset int64) string {
	b, err := os.ReadFile(p)
	if err != nil || int64(len(b)) < offset {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimRight(string(b[offset:]), "\n"), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return strings.Join(lines, "\n")
}
