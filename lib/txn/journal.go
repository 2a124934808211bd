package txn

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// journal is the on-disk record of an unfinished transaction.
type journal struct {
	// State is "open" while files may be half changed, "committed" once the
	// new state is final and only cleanup remains.
	State string `json:"state"`
	// CreatedDirs are the levels of the state directory this transaction
	// created, removed when it ends.
	CreatedDirs []string `json:"created_dirs,omitempty"`
	Entries     []entry  `json:"entries"`
	// Restarts are the commands run during the transaction, run again
	// after a rollback so that daemons serve the old files.
	Restarts [][]string `json:"restarts,omitempty"`
}

// entry is one changed file or directory and what it was before.
type entry struct {
	Kind string `json:"kind"` // "file" or "dir"
	Path string `json:"path"`
	// NodePath is Path as the node sees it, for reports.
	NodePath string `json:"node_path,omitempty"`
	Existed  bool   `json:"existed"`
	// Backup holds the old content of an existing file.
	Backup string `json:"backup,omitempty"`
	// Keep the backup after commit, as Ganeti keeps backups of keys.
	Keep bool        `json:"keep,omitempty"`
	Mode fs.FileMode `json:"mode,omitempty"`
	UID  int         `json:"uid"`
	GID  int         `json:"gid"`
}

const journalName = "journal.json"

// readJournal reads the journal, which says what to remove and rename as
// root: only a regular file of the running user that no one else can write
// is believed.
func readJournal(path string) (*journal, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("reading the journal %s: a symbolic link: %w", path, ErrUnsafeLock)
		}
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if err := checkRegular(fd, path); err != nil {
		return nil, err
	}
	if err := checkOwned(fd, path); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the journal %s: %w", path, err)
	}
	var j journal
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("reading the journal %s: %w", path, err)
	}
	if j.State != "open" && j.State != "committed" {
		return nil, fmt.Errorf("reading the journal %s: unknown state %q", path, j.State)
	}
	return &j, nil
}

func writeJournal(path string, j *journal) error {
	data, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(path, append(data, '\n'), 0o600, -1, -1, false); err != nil {
		return fmt.Errorf("writing the journal: %w", err)
	}
	return nil
}

// removeTemps removes the temporary files renameio may have left beside
// path when the process was killed: "." + base name + decimal digits.
func removeTemps(path string) {
	dir, base := filepath.Split(path)
	matches, _ := filepath.Glob(filepath.Join(dir, "."+globEscape(base)+"*"))
	for _, m := range matches {
		rest := filepath.Base(m)[len(base)+1:]
		if rest != "" && allDigits(rest) {
			_ = os.Remove(m)
		}
	}
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func globEscape(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', '\\':
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return string(b)
}

func (e entry) nodePath() string {
	if e.NodePath != "" {
		return e.NodePath
	}
	return e.Path
}

// nodePathOf maps p, a real path that starts with e.Path (its backup), to
// the node's view.
func (e entry) nodePathOf(p string) string {
	return e.nodePath() + strings.TrimPrefix(p, e.Path)
}

// rollbackEntry puts one entry back. Every step is idempotent, so a rollback
// killed half way, or one that failed on a cause since removed, is finished
// by running it again. Only what was really changed is touched: a file the
// run never made is not "removed", a target the run never replaced is not
// "restored", so that a failure names only what is really left to do.
func rollbackEntry(e entry) error {
	np := e.nodePath()
	switch e.Kind {
	case "dir":
		if !e.Existed {
			if err := removeIfPresent(e.Path, unix.Rmdir); err != nil {
				return fmt.Errorf("could not remove %s, which the run made: %w", np, cause(err))
			}
			return syncParent(e.Path)
		}
		if err := os.Chmod(e.Path, e.Mode); err != nil {
			return fmt.Errorf("could not restore the mode of %s: %w", np, cause(err))
		}
		if err := os.Lchown(e.Path, e.UID, e.GID); err != nil {
			return fmt.Errorf("could not restore the owner of %s: %w", np, cause(err))
		}
		return nil
	case "file":
		defer removeTemps(e.Path)
		if !e.Existed {
			if err := removeIfPresent(e.Path, unix.Unlink); err != nil {
				return fmt.Errorf("could not remove %s, which the run made: %w", np, cause(err))
			}
			return syncParent(e.Path)
		}
		defer removeTemps(e.Backup)
		if _, err := os.Lstat(e.Backup); errors.Is(err, fs.ErrNotExist) {
			// Killed before the backup was complete, or already put back:
			// the target is the old file (it is written only after its
			// backup).
			return nil
		}
		if untouched(e) {
			// The target was never replaced (its write failed): it is
			// the old file already.
			if err := unix.Unlink(e.Backup); err != nil {
				return fmt.Errorf("could not remove the backup %s: %w", e.nodePathOf(e.Backup), cause(err))
			}
			return syncDir(filepath.Dir(e.Path))
		}
		why := func(err error) error {
			return fmt.Errorf("could not put back %s: %w (its previous content is kept in %s)",
				np, cause(err), e.nodePathOf(e.Backup))
		}
		if err := os.Lchown(e.Backup, e.UID, e.GID); err != nil {
			return why(err)
		}
		if err := os.Chmod(e.Backup, e.Mode); err != nil {
			return why(err)
		}
		if err := os.Rename(e.Backup, e.Path); err != nil {
			return why(err)
		}
		return syncDir(filepath.Dir(e.Path))
	}
	return fmt.Errorf("journal entry of unknown kind %q", e.Kind)
}

// untouched reports whether an existing file's target still is what its
// backup holds, with the recorded mode and owner.
func untouched(e entry) bool {
	fi, err := os.Lstat(e.Path)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != e.Mode.Perm() || int(st.Uid) != e.UID || int(st.Gid) != e.GID {
		return false
	}
	old, err1 := os.ReadFile(e.Path)
	backup, err2 := os.ReadFile(e.Backup)
	return err1 == nil && err2 == nil && bytes.Equal(old, backup)
}

// removeIfPresent removes p with remove (unlink or rmdir) if it is there:
// on a read-only file system, unlink fails with EROFS even for a name that
// does not exist, and a file the run never made must not be reported.
func removeIfPresent(p string, remove func(string) error) error {
	if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := remove(p); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}

// cause is the system's reason in err, without the paths it repeats.
func cause(err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &le):
		return le.Err
	}
	return err
}

// syncParent syncs the directory of path, if it still exists: a rollback
// may remove a directory created by the same run.
func syncParent(path string) error {
	err := syncDir(filepath.Dir(path))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
