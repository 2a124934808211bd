package txn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodejoin/nodejoin/internal/problem"
)

// LockWait bounds the wait for a lock that another run holds; the caller's
// context can end it sooner (a client that went away, a signal).
const LockWait = 30 * time.Second

// ErrUnsafeLock says a lock file or its directory could be changed by
// someone other than the user running the program: it is not used.
var ErrUnsafeLock = errors.New("not safe to use")

const hintUnsafeLock = "the lock directory must be a real directory owned by root that no one else can write; remove what is there and run again"

// openOwnLock opens nodejoin's own lock file, whose content (the holder's
// PID and the state directory levels a run is about to make) is trusted on
// recovery. Its directory is made 0700 and must be a directory owned by the
// running user that no one else can write, and the file a regular file owned
// by that user: the parent lock directory (/var/lock) is world-writable on
// Debian, so anything found there may have been planted. Nothing is
// followed, truncated or created through a symbolic link.
func openOwnLock(path string) (*os.File, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("creating the lock directory: %w", err)
	}
	if err := unix.Mkdir(dir, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("creating the lock directory %s: %w", dir, err)
	}
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return nil, unsafeLock(dir, "not a directory (a symbolic link or a file)")
		}
		return nil, fmt.Errorf("opening the lock directory %s: %w", dir, err)
	}
	defer func() { _ = unix.Close(dfd) }()
	if err := checkOwned(dfd, dir); err != nil {
		return nil, err
	}
	fd, err := unix.Openat(dfd, filepath.Base(path),
		unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, unsafeLock(path, "a symbolic link")
		}
		return nil, fmt.Errorf("opening the lock %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	if err := checkRegular(fd, path); err != nil {
		f.Close()
		return nil, err
	}
	if err := checkOwned(fd, path); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// openForeignLock opens a lock file shared with other software (Ganeti's
// ssconf lock): it is only flocked, never written or truncated, and it is
// not opened through a symbolic link, so a link planted in a world-writable
// lock directory cannot make root create or open a file elsewhere.
func openForeignLock(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating the lock directory: %w", err)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, unsafeLock(path, "a symbolic link")
		}
		return nil, fmt.Errorf("opening the lock %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	if err := checkRegular(fd, path); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func unsafeLock(path, what string) error {
	return problem.Hint(fmt.Errorf("the lock %s: %s: %w", path, what, ErrUnsafeLock), hintUnsafeLock)
}

func checkRegular(fd int, path string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("checking the lock %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return unsafeLock(path, "not a regular file")
	}
	return nil
}

// checkOwned requires fd to belong to the running user and to be writable
// by no one else.
func checkOwned(fd int, path string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("checking %s: %w", path, err)
	}
	if euid := os.Geteuid(); int(st.Uid) != euid {
		return unsafeLock(path, fmt.Sprintf("owned by uid %d, not %d", st.Uid, euid))
	}
	if st.Mode&0o022 != 0 {
		return unsafeLock(path, fmt.Sprintf("writable by others (mode %04o)", st.Mode&0o7777))
	}
	return nil
}

// waitLock takes an exclusive flock on f, waiting up to LockWait or until
// ctx ends. While it waits, it says once who holds the lock. The wait is
// the kernel's (a blocking flock on a duplicate of f's descriptor, in a
// goroutine of its own), so the lock passes to a waiter the moment its
// holder lets go: the master's nodes are recorded one after the other
// under it, and a poll would add its interval to every hand-over.
func waitLock(ctx context.Context, log *slog.Logger, f *os.File) error {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EWOULDBLOCK) {
		return fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	if log != nil {
		log.Warn("waiting for the lock", "path", f.Name(), "holder", holder(f))
	}
	ctx, cancel := context.WithTimeout(ctx, LockWait)
	defer cancel()
	// The duplicate shares f's open file, and so its lock. If the wait is
	// given up, the goroutine closes it once flock returns: a lock taken
	// after all then goes away with the last descriptor of that file,
	// when the caller has closed f as well.
	dup, err := unix.Dup(int(f.Fd()))
	if err != nil {
		return fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	done := make(chan error, 1)
	go func() {
		var err error
		for {
			if err = unix.Flock(dup, unix.LOCK_EX); !errors.Is(err, unix.EINTR) {
				break
			}
		}
		_ = unix.Close(dup)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("locking %s: %w", f.Name(), err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("locking %s: held by %s: %w", f.Name(), holder(f), ctx.Err())
	}
}

// holder names the process holding a flock on f, from /proc/locks (which
// also names holders that are not nodejoin programs, e.g. Ganeti's tools
// on the ssconf lock), or "another process" if none can be found.
func holder(f *os.File) string {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return "another process"
	}
	data, err := os.ReadFile("/proc/locks")
	if err != nil {
		return "another process"
	}
	// "1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF"; waiters have "->".
	id := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 6 || fields[1] != "FLOCK" || fields[5] != id {
			continue
		}
		pid, err := strconv.Atoi(fields[4])
		if err != nil || pid <= 0 {
			continue
		}
		return describeProcess(pid)
	}
	return "another process"
}

func describeProcess(pid int) string {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(cmdline) == 0 {
		return fmt.Sprintf("process %d", pid)
	}
	name, _, _ := bytes.Cut(cmdline, []byte{0})
	return fmt.Sprintf("process %d (%s)", pid, filepath.Base(string(name)))
}
