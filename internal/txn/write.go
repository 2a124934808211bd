package txn

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/renameio/v2"
	"golang.org/x/sys/unix"
)

// writeAtomic writes data to path with the given mode and owner (uid -1:
// keep the writer's), in path's directory as the system resolves it: for
// the journal and the master's records. A node file goes through
// applyAll, which pins its directory first.
func writeAtomic(path string, data []byte, mode fs.FileMode, uid, gid int, secret bool) error {
	dir, err := os.OpenRoot(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer func() { _ = dir.Close() }()
	return writeIn(dir, filepath.Base(path), path, data, mode, uid, gid, secret)
}

// writeIn writes data to name in dir. The temporary file is created 0600
// and given its final mode and owner before the first byte, so a secret is
// never readable by others, not even for an instant. renameio.WriteFile is
// not used: it keeps an existing target's mode, even a looser one.
//
// A secret whose final mode lets its group read it (Ganeti's 0440 for
// server.pem, client.pem and hmac.key) is the one exception: its temporary
// file stays 0600 and the mode is set once it is in place, so that no
// temporary copy of a key is ever readable by anyone but its owner.
func writeIn(dir *os.Root, name, path string, data []byte, mode fs.FileMode, uid, gid int, secret bool) error {
	tempMode := mode
	if secret {
		tempMode = mode & 0o700
	}
	crashpoint("create temporary file for " + path)
	t, err := renameio.NewPendingFile(name, renameio.WithRoot(dir), renameio.WithStaticPermissions(tempMode))
	if err != nil {
		return err
	}
	defer func() { _ = t.Cleanup() }() // removes the temporary file unless it was renamed
	if uid >= 0 {
		if err := t.Chown(uid, gid); err != nil {
			return err
		}
	}
	if _, err := t.Write(data); err != nil {
		return err
	}
	crashpoint("rename over " + path)
	if err := t.CloseAtomicallyReplace(); err != nil {
		return err
	}
	if tempMode != mode {
		crashpoint("set the mode of " + path)
		if err := dir.Chmod(name, mode); err != nil {
			return err
		}
	}
	// renameio gives atomicity, not durability: the rename itself lives in
	// the directory, which must be synced too.
	return syncRoot(dir)
}

// pinDir opens dir, a real path with no symbolic link in it (Resolve made
// it so), one component at a time without following links: if a directory
// on the way was replaced by a link since the plan was made (by someone
// who can write its parent, such as a login user in their home), the write
// fails instead of following it. Everything is then done relative to the
// pinned directory.
func pinDir(dir string) (*os.Root, error) {
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: "/", Err: err}
	}
	for _, c := range strings.Split(strings.Trim(filepath.Clean(dir), "/"), "/") {
		if c == "" {
			continue
		}
		next, err := unix.Openat(fd, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		_ = unix.Close(fd)
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return nil, fmt.Errorf("%s: %w", dir, ErrChanged)
		}
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
		}
		fd = next
	}
	defer func() { _ = unix.Close(fd) }()
	// os.Root opens by name; it is the pinned directory only if it is the
	// same inode, which it then holds open.
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	var pinned unix.Stat_t
	fi, err := r.Stat(".")
	if err == nil {
		err = unix.Fstat(fd, &pinned)
	}
	if err != nil {
		_ = r.Close()
		return nil, err
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Dev != pinned.Dev || st.Ino != pinned.Ino {
		_ = r.Close()
		return nil, fmt.Errorf("%s: %w", dir, ErrChanged)
	}
	return r, nil
}

// ErrChanged is a directory that became a symbolic link between the plan
// and the write.
var ErrChanged = errors.New("a directory on the way was replaced by a symbolic link since it was checked")

func syncRoot(dir *os.Root) error {
	d, err := dir.Open(".")
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir.Name(), err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// backupName is Ganeti's backup naming (lib/utils/io.py CreateBackup):
// <name>.backup-<YYYY-MM-DD_HH_MM_SS>.<random>.
func backupName(path string, now time.Time) string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789_"
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return fmt.Sprintf("%s.backup-%s.%s", path, now.Format("2006-01-02_15_04_05"), b)
}

// WriteFile replaces one file atomically and durably, outside any
// transaction: for the master's records, each consistent on its own. The
// file belongs to the writer; a missing directory is an error.
func WriteFile(path string, data []byte, mode fs.FileMode) error {
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("writing %s: %w", path, ErrNotRegular)
	}
	if err := writeAtomic(path, data, mode, -1, -1, false); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// File is one file for WriteFiles.
type File struct {
	Path string
	Data []byte
	Mode fs.FileMode
}

// WriteFiles replaces several files as WriteFile does, each atomically and
// durably on its own, with one round of fsyncs for all (written, synced
// together, renamed, each directory synced once): for the master's records,
// several files of which change at each join.
func WriteFiles(files []File) error {
	roots := map[string]*os.Root{}
	defer func() {
		for _, r := range roots {
			_ = r.Close()
		}
	}()
	var ps []*pending
	for _, f := range files {
		dir := filepath.Dir(f.Path)
		r, ok := roots[dir]
		if !ok {
			var err error
			if r, err = os.OpenRoot(dir); err != nil {
				discard(ps)
				return fmt.Errorf("writing %s: %w", f.Path, err)
			}
			roots[dir] = r
		}
		name := filepath.Base(f.Path)
		if fi, err := r.Lstat(name); err == nil && !fi.Mode().IsRegular() {
			discard(ps)
			return fmt.Errorf("writing %s: %w", f.Path, ErrNotRegular)
		}
		tmp, fh, err := createTemp(r, name, f.Data, f.Mode, -1, -1)
		if err != nil {
			discard(ps)
			return fmt.Errorf("writing %s: %w", f.Path, err)
		}
		ps = append(ps, &pending{dir: r, tmp: tmp, name: name, path: f.Path, nodePath: f.Path, f: fh})
	}
	return commitTemps(ps)
}
