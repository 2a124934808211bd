package harness

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// OutsideDirs are the machine's own directories that the programs under
// test, sshd and Ganeti's daemons would write on a real machine. A lab
// host has its own of each (WritableDirs, tmpfs mounts), so a lab run must
// leave these unchanged; Snapshot records them to prove it. /tmp is left
// out: it holds the lab dirs and the test's own temporary files, and a host
// has its own /tmp anyway. So is /run/netns, where the lab's (and other
// labs') network namespaces come and go.
var OutsideDirs = []string{
	"/etc/ssh", "/etc/nodejoin", "/etc/ganeti", "/etc/hosts", "/root/.ssh",
	"/var/lib/ganeti", "/var/lib/nodejoin", "/var/log", "/var/tmp",
	"/run", "/dev/shm", "/usr/local/sbin",
}

// outsideSkip are subtrees of OutsideDirs that change for reasons of their
// own while a lab runs.
var outsideSkip = []string{"/run/netns"}

// Snapshot is the state of OutsideDirs: one line per file, directory or
// link with its mode, owner, size and content hash.
type Snapshot map[string]string

// TakeSnapshot records dirs, by default OutsideDirs, on the real
// filesystem (the caller's mount namespace: a test process, not a lab
// host).
func TakeSnapshot(dirs ...string) (Snapshot, error) {
	if len(dirs) == 0 {
		dirs = OutsideDirs
	}
	s := Snapshot{}
	for _, top := range dirs {
		err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			for _, skip := range outsideSkip {
				if p == skip {
					return filepath.SkipDir
				}
			}
			fi, err := os.Lstat(p)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) { // went while we walked
					return nil
				}
				return err
			}
			entry := fmt.Sprintf("%v %s", fi.Mode(), ownerOf(fi))
			switch {
			case fi.Mode().IsRegular():
				sum, err := fileSum(p)
				if err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
				entry += fmt.Sprintf(" %d %s", fi.Size(), sum)
			case fi.Mode()&fs.ModeSymlink != 0:
				target, _ := os.Readlink(p)
				entry += " -> " + target
			case fi.Mode()&fs.ModeSocket != 0, fi.Mode()&fs.ModeNamedPipe != 0:
			}
			s[p] = entry
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return s, nil
}

// Diff returns one line per path that was added, removed or changed from s
// to after, sorted: "+ path", "- path" or "~ path: old => new".
func (s Snapshot) Diff(after Snapshot) []string {
	var d []string
	for p, a := range after {
		b, ok := s[p]
		switch {
		case !ok:
			d = append(d, "+ "+p+" "+a)
		case a != b:
			d = append(d, "~ "+p+": "+b+" => "+a)
		}
	}
	for p := range s {
		if _, ok := after[p]; !ok {
			d = append(d, "- "+p)
		}
	}
	sort.Strings(d)
	return d
}

// CheckNothingOutside returns an error listing every change to dirs (by
// default OutsideDirs: pass the same as to TakeSnapshot) since before.
func CheckNothingOutside(before Snapshot, dirs ...string) error {
	after, err := TakeSnapshot(dirs...)
	if err != nil {
		return err
	}
	if d := before.Diff(after); len(d) > 0 {
		return fmt.Errorf("%d paths changed outside the lab hosts (a write outside a host's own directories):\n%s",
			len(d), strings.Join(d, "\n"))
	}
	return nil
}

func fileSum(p string) (string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8]), nil
}

func ownerOf(fi fs.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("%d:%d", st.Uid, st.Gid)
	}
	return "?"
}

// OverlaidDirs are the machine's directories that RunOverlaid covers: the
// parents of OutsideDirs, so that a directory a program would create (e.g.
// /var/lib/nodejoin) is caught too. /run is left out: `ip netns add` keeps
// every lab's namespaces in /run/netns, which must stay the machine's;
// each host has its own tmpfs /run.
var OverlaidDirs = []string{"/etc", "/root", "/var/lib", "/var/log", "/var/tmp", "/usr/local", "/dev/shm"}

// RunOverlaid runs argv (a test binary's own -test.run, typically) in a
// new mount namespace where each of OverlaidDirs is an overlay whose upper
// layer is under upper, and returns what argv printed and every path it,
// or anything it started (a lab's hosts copy its mounts), wrote or deleted
// in those directories. A write there by another process of the machine
// does not show: only this namespace sees the overlays.
func RunOverlaid(upper string, env []string, argv ...string) (written []string, output []byte, err error) {
	var b strings.Builder
	b.WriteString("set -e\n")
	for i, d := range OverlaidDirs {
		u := fmt.Sprintf("%s/%d", upper, i)
		if err := os.MkdirAll(u+"/u", 0o755); err != nil {
			return nil, nil, err
		}
		if err := os.MkdirAll(u+"/w", 0o755); err != nil {
			return nil, nil, err
		}
		fmt.Fprintf(&b, "mount -t overlay overlay -o %s %s\n", shq("lowerdir="+d+",upperdir="+u+"/u,workdir="+u+"/w"), shq(d))
	}
	b.WriteString(`exec "$@"` + "\n")
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", b.String(), "sh"}, argv...)...)
	cmd.Env = append(os.Environ(), env...)
	output, err = cmd.CombinedOutput()
	for i, d := range OverlaidDirs {
		u := fmt.Sprintf("%s/%d/u", upper, i)
		werr := filepath.WalkDir(u, func(p string, de fs.DirEntry, err error) error {
			if err != nil || p == u {
				return err
			}
			what := "written"
			if de.Type()&fs.ModeCharDevice != 0 {
				what = "deleted" // an overlay whiteout
			}
			written = append(written, filepath.Join(d, strings.TrimPrefix(p, u))+" ("+what+")")
			return nil
		})
		if werr != nil {
			return written, output, werr
		}
	}
	sort.Strings(written)
	return written, output, err
}
