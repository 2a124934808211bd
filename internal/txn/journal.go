package txn

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
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

	"github.com/nodejoin/nodejoin/internal/daemon"
)

// journal is the on-disk record of an unfinished transaction. The file
// holds the journal as first written, then any later versions appended as
// updates (see appendJournal); the last whole update of the same journal
// is the one that counts.
type journal struct {
	// ID tells this transaction's updates from anything else an append
	// cut short by a crash may leave in the file; "" in a journal of an
	// earlier version, which has no updates.
	ID string `json:"id,omitempty"`
	// State is "open" while files may be half changed, "committed" once the
	// new state is final and only cleanup remains.
	State string `json:"state"`
	// CreatedDirs are the levels of the state directory this transaction
	// created, removed when it ends.
	CreatedDirs []string `json:"created_dirs,omitempty"`
	Entries     []entry  `json:"entries"`
	// Restarts are the commands run during the transaction, run again
	// after a rollback so that daemons serve the old files.
	Restarts []daemon.Command `json:"restarts,omitempty"`
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
	Keep bool `json:"keep,omitempty"`
	// RemoveAtCommit is a directory removed once the files removed from
	// it and their backups are gone; until then it stays as it was.
	RemoveAtCommit bool        `json:"remove_at_commit,omitempty"`
	Mode           fs.FileMode `json:"mode,omitempty"`
	UID            int         `json:"uid"`
	GID            int         `json:"gid"`
}

// JournalName is the journal's file name in the state directory.
const JournalName = "journal.json"

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
	dec := json.NewDecoder(bytes.NewReader(data))
	var j journal
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("reading the journal %s: %w", path, err)
	}
	if j.ID != "" {
		j = lastUpdate(dec, j)
	} else if dec.More() {
		return nil, fmt.Errorf("reading the journal %s: data after the journal", path)
	}
	if j.State != "open" && j.State != "committed" {
		return nil, fmt.Errorf("reading the journal %s: unknown state %q", path, j.State)
	}
	return &j, nil
}

// update is a later version of a journal, appended to its file.
type update struct {
	SHA256  string          `json:"sha256"` // of Journal, as written
	Journal json.RawMessage `json:"journal"`
}

// lastUpdate is the last of j's updates that dec holds whole: the first
// one that does not decode, whose digest does not match, or that is of
// another journal (stale data left by a crash in an append) ends them.
func lastUpdate(dec *json.Decoder, j journal) journal {
	for {
		var u update
		if err := dec.Decode(&u); err != nil {
			return j
		}
		sum := sha256.Sum256(u.Journal)
		var next journal
		if hex.EncodeToString(sum[:]) != u.SHA256 || json.Unmarshal(u.Journal, &next) != nil || next.ID != j.ID {
			return j
		}
		j = next
	}
}

// writeJournal writes the journal's first version: a new file, replaced
// atomically.
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

// appendJournal writes a later version of the journal at the end of its
// file and syncs the file: no new file, rename or directory sync. An
// append cut short by a crash leaves the version before it (lastUpdate),
// which is what an update not yet written means: the step it records
// (a restart, the commit) had not begun.
func appendJournal(path string, j *journal) error {
	data, err := json.Marshal(j)
	if err != nil {
		return err
	}
	// Built by hand, so that the digest is of the bytes written.
	sum := sha256.Sum256(data)
	line := fmt.Appendf(nil, `{"sha256":%q,"journal":%s}`, hex.EncodeToString(sum[:]), data)
	crashpoint("append to " + path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("writing the journal: %w", err)
	}
	_, err = f.Write(append(line, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing the journal: %w", err)
	}
	return nil
}

// removeTemps removes the temporary files renameio may have left beside
// path when the process was killed: "." + base name + decimal digits.
func removeTemps(path string) { removeTempsOf([]string{path}) }

// removeTempsOf is removeTemps for each of paths, reading each directory
// once (a commit has a dozen files in a few directories).
func removeTempsOf(paths []string) {
	bases := map[string][]string{}
	for _, p := range paths {
		dir, base := filepath.Split(p)
		bases[dir] = append(bases[dir], base)
	}
	for dir, bs := range bases {
		d, err := os.Open(dir)
		if err != nil {
			continue
		}
		names, _ := d.Readdirnames(-1)
		_ = d.Close()
		for _, n := range names {
			if isTempOf(n, bs) {
				_ = os.Remove(filepath.Join(dir, n))
			}
		}
	}
}

// isTempOf says whether name is a temporary file of one of bases.
func isTempOf(name string, bases []string) bool {
	rest, ok := strings.CutPrefix(name, ".")
	if !ok {
		return false
	}
	for _, b := range bases {
		if digits, ok := strings.CutPrefix(rest, b); ok && digits != "" && allDigits(digits) {
			return true
		}
	}
	return false
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
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
// "restored", so that a failure names only what is really left to do. All
// is done relative to the entry's directory, pinned as for the writes, so
// that nothing is removed or renamed through a link put on the way since.
func rollbackEntry(e entry) error {
	np := e.nodePath()
	if e.Kind != "dir" && e.Kind != "file" {
		return fmt.Errorf("journal entry of unknown kind %q", e.Kind)
	}
	dir, err := pinDir(filepath.Dir(e.Path))
	if errors.Is(err, fs.ErrNotExist) && !e.Existed {
		return nil // its directory, made by the same run, is gone already
	}
	if err != nil && !e.Existed {
		return fmt.Errorf("could not check whether the run made %s: %w", np, cause(err))
	}
	if err != nil {
		return fmt.Errorf("could not put back %s: %w", np, cause(err))
	}
	defer func() { _ = dir.Close() }()
	name := filepath.Base(e.Path)
	if e.Kind == "dir" {
		if !e.Existed {
			if err := removeIfPresent(dir, name, true); err != nil {
				return fmt.Errorf("could not remove %s, which the run made: %w", np, cause(err))
			}
			return syncRoot(dir)
		}
		if err := dir.Chmod(name, e.Mode); err != nil {
			return fmt.Errorf("could not restore the mode of %s: %w", np, cause(err))
		}
		if err := dir.Lchown(name, e.UID, e.GID); err != nil {
			return fmt.Errorf("could not restore the owner of %s: %w", np, cause(err))
		}
		return nil
	}
	defer removeTemps(e.Path)
	if !e.Existed {
		if err := removeIfPresent(dir, name, false); err != nil {
			return fmt.Errorf("could not remove %s, which the run made: %w", np, cause(err))
		}
		return syncRoot(dir)
	}
	defer removeTemps(e.Backup)
	backup := filepath.Base(e.Backup)
	if _, err := dir.Lstat(backup); errors.Is(err, fs.ErrNotExist) {
		// Killed before the backup was complete, or already put back:
		// the target is the old file (it is written only after its
		// backup).
		return nil
	}
	if untouched(dir, name, backup, e) {
		// The target was never replaced (its write failed): it is the
		// old file already.
		if err := dir.Remove(backup); err != nil {
			return fmt.Errorf("could not remove the backup %s: %w", e.nodePathOf(e.Backup), cause(err))
		}
		return syncRoot(dir)
	}
	why := func(err error) error {
		return fmt.Errorf("could not put back %s: %w (its previous content is kept in %s)",
			np, cause(err), e.nodePathOf(e.Backup))
	}
	if err := dir.Lchown(backup, e.UID, e.GID); err != nil {
		return why(err)
	}
	if err := dir.Chmod(backup, e.Mode); err != nil {
		return why(err)
	}
	if err := dir.Rename(backup, name); err != nil {
		return why(err)
	}
	return syncRoot(dir)
}

// untouched reports whether an existing file's target still is what its
// backup holds, with the recorded mode and owner.
func untouched(dir *os.Root, name, backup string, e entry) bool {
	if !sameMetaIn(dir, name, e) {
		return false
	}
	old, err1 := readNoFollow(dir, name)
	saved, err2 := readNoFollow(dir, backup)
	return err1 == nil && err2 == nil && bytes.Equal(old, saved)
}

func sameMetaIn(dir *os.Root, name string, e entry) bool {
	fi, err := dir.Lstat(name)
	if err != nil || (e.Kind == "file" && !fi.Mode().IsRegular()) {
		return false
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fi.Mode().Perm() == e.Mode.Perm() && int(st.Uid) == e.UID && int(st.Gid) == e.GID
}

func readNoFollow(dir *os.Root, name string) ([]byte, error) {
	f, err := dir.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// removeIfPresent removes name in dir if it is there, and only as the kind
// the run made: on a read-only file system, unlink fails with EROFS even
// for a name that does not exist, and a file the run never made must not
// be reported.
func removeIfPresent(dir *os.Root, name string, isDir bool) error {
	fi, err := dir.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() != isDir {
		return errors.New("it was replaced by something else")
	}
	if err := dir.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
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
