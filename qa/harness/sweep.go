package harness

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// baseDir holds one directory and one lock file per lab. It is short because
// the paths appear in mount options and on command lines.
const baseDir = "/tmp/njqa"

// labName matches a lab prefix at the start of a namespace, directory or lock
// file name.
var labName = regexp.MustCompile(`^(nj[0-9a-f]{4})(-|\.lock$|$)`)

func newPrefix() string {
	var b [2]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return "nj" + hex.EncodeToString(b[:])
}

// lockLab reserves a fresh prefix for this process: it holds an flock on
// baseDir/<prefix>.lock for the lab's lifetime, which is how Sweep tells a
// live lab (in this or another process) from the leftover of a killed one.
// The lock file is locked before it gets its name, so Sweep never sees it
// unlocked.
func lockLab() (prefix string, lock *os.File, err error) {
	if err := os.MkdirAll(baseDir, 0o700); err != nil {
		return "", nil, err
	}
	for range 20 {
		f, err := os.CreateTemp(baseDir, ".lock-")
		if err != nil {
			return "", nil, err
		}
		tmp := f.Name()
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			os.Remove(tmp)
			return "", nil, fmt.Errorf("locking %s: %w", tmp, err)
		}
		p := newPrefix()
		err = os.Link(tmp, filepath.Join(baseDir, p+".lock"))
		os.Remove(tmp)
		if err == nil && !prefixInUse(p) {
			return p, f, nil
		}
		if err == nil {
			os.Remove(filepath.Join(baseDir, p+".lock"))
		}
		f.Close()
	}
	return "", nil, errors.New("no free lab prefix after 20 tries")
}

// prefixInUse reports a namespace or directory left with this prefix.
func prefixInUse(p string) bool {
	if _, err := os.Stat(filepath.Join(baseDir, p)); err == nil {
		return true
	}
	names, _ := netnsList()
	for _, n := range names {
		if strings.HasPrefix(n, p+"-") {
			return true
		}
	}
	return false
}

// netnsList returns the names `ip netns list` shows.
func netnsList() ([]string, error) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %w", err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// Sweep removes what killed runs left behind: namespaces, processes and lab
// directories whose prefix no live lab holds locked. Live labs, in this
// process or another, are left alone.
func Sweep() error {
	byPrefix := map[string][]string{} // prefix -> its namespaces
	names, err := netnsList()
	if err != nil {
		return err
	}
	for _, n := range names {
		if m := labName.FindStringSubmatch(n); m != nil && m[2] == "-" {
			byPrefix[m[1]] = append(byPrefix[m[1]], n)
		}
	}
	entries, _ := os.ReadDir(baseDir)
	for _, e := range entries {
		if m := labName.FindStringSubmatch(e.Name()); m != nil {
			if _, ok := byPrefix[m[1]]; !ok {
				byPrefix[m[1]] = nil
			}
		}
	}
	var errs []error
	for p, nss := range byPrefix {
		lockPath := filepath.Join(baseDir, p+".lock")
		f, err := os.Open(lockPath)
		if err == nil {
			if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
				f.Close() // a live lab holds it
				continue
			}
		}
		errs = append(errs, removeNamespaces(nss))
		errs = append(errs, os.RemoveAll(filepath.Join(baseDir, p)))
		if f != nil {
			os.Remove(lockPath)
			f.Close()
		}
	}
	return errors.Join(errs...)
}

// removeNamespaces kills every process still in the namespaces (SIGKILL: the
// holder, a pid namespace's init, ignores everything else), waits for them to
// go, and deletes the namespaces.
func removeNamespaces(nss []string) error {
	var errs []error
	deadline := time.Now().Add(5 * time.Second)
	for _, ns := range nss {
		for {
			pids := netnsPids(ns)
			if len(pids) == 0 {
				break
			}
			if time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("namespace %s: processes %v survive SIGKILL", ns, pids))
				break
			}
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip netns del %s: %s", ns, firstLine(out, err)))
		}
	}
	return errors.Join(errs...)
}

func netnsPids(ns string) []int {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}
