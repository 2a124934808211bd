package txn

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

// A transaction's writes are made in phases, each over every change at once,
// so that what costs a device flush is done once per phase and not once per
// file: an fsync waits for the disk, and fsyncs issued together are committed
// in one journal flush by the file system (ext4, xfs). The order that the
// crash guarantees rest on is kept between phases:
//
//  1. the journal, naming every change, written and synced once;
//  2. directories, parents first;
//  3. backups of the files that exist: all written to temporary files, all
//     synced, all renamed to their backup names, each directory synced once,
//     so that every backup is whole and durable before its target is touched;
//  4. the new contents: all written to temporary files that have their final
//     owner (and mode, but for group-readable secrets) from the first byte,
//     all synced, all renamed over their targets, the secrets' modes set;
//  5. removals;
//  6. each directory that steps 2, 4 and 5 changed synced once, all at the
//     same time.
//
// A kill between any two steps leaves each file old or new, and the journal
// (durable before anything else) lets the next run put every file back:
// rollbackEntry is idempotent and touches only what was really changed. The
// new directories need not be durable before the files in them: until step
// 6 a crash may lose a new directory with what was put in it, which leaves
// those files as they were before the run (not there), as a rollback would.
// Only backups must be durable before their targets change.

// syncParallel bounds the fsyncs in flight at once.
const syncParallel = 16

// dirs pins each directory once per Apply and keeps it open.
type dirs map[string]*os.Root

func (d dirs) get(path string) (*os.Root, error) {
	if r, ok := d[path]; ok {
		return r, nil
	}
	r, err := pinDir(path)
	if err != nil {
		return nil, err
	}
	d[path] = r
	return r, nil
}

func (d dirs) close() {
	for _, r := range d {
		_ = r.Close()
	}
}

// pending is one temporary file, written and waiting to be synced and
// renamed to name in dir.
type pending struct {
	dir       *os.Root
	tmp, name string
	path      string // the target's real path, for errors and crash points
	nodePath  string // the target as the node sees it, for errors
	f         *os.File
	// chmod is the mode to set once renamed (a group-readable secret's
	// temporary file stays 0600), or 0 for none.
	chmod fs.FileMode
}

// createTemp opens a new temporary file for name in dir with mode (past the
// umask), owned by uid:gid (-1: the writer's), holding data. Its name is
// renameio's: "." + name + decimal digits, which removeTemps recognises.
func createTemp(dir *os.Root, name string, data []byte, mode fs.FileMode, uid, gid int) (string, *os.File, error) {
	var tmp string
	var f *os.File
	for attempt := 0; ; attempt++ {
		var b [8]byte
		_, _ = rand.Read(b[:])
		tmp = "." + name + strconv.FormatUint(binary.LittleEndian.Uint64(b[:])>>1, 10)
		var err error
		f, err = dir.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, mode)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || attempt > 100 {
			return "", nil, err
		}
	}
	fail := func(err error) (string, *os.File, error) {
		_ = f.Close()
		_ = dir.Remove(tmp)
		return "", nil, err
	}
	// The umask may have taken bits off: set the mode before any byte.
	if fi, err := f.Stat(); err != nil {
		return fail(err)
	} else if fi.Mode().Perm() != mode.Perm() {
		if err := f.Chmod(mode.Perm()); err != nil {
			return fail(err)
		}
	}
	if uid >= 0 {
		if err := f.Chown(uid, gid); err != nil {
			return fail(err)
		}
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	return tmp, f, nil
}

// discard removes the temporary files not yet renamed.
func discard(ps []*pending) {
	for _, p := range ps {
		if p.f != nil {
			_ = p.f.Close()
			p.f = nil
		}
		if p.tmp != "" {
			_ = p.dir.Remove(p.tmp)
		}
	}
}

// parallel calls f for each i in [0, n), at most syncParallel at a time,
// and returns the errors joined.
func parallel(n int, f func(i int) error) error {
	errs := make([]error, n)
	sem := make(chan struct{}, syncParallel)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// commitTemps syncs every temporary file, renames each over its target and
// sets the modes left to set, then syncs each directory once.
func commitTemps(ps []*pending) error {
	touched, err := renameTemps(ps)
	if err != nil {
		return err
	}
	return syncRoots(touched)
}

// renameTemps syncs every temporary file, renames each over its target and
// sets the modes left to set; it returns the directories to sync.
func renameTemps(ps []*pending) (map[*os.Root]bool, error) {
	defer discard(ps)
	if err := parallel(len(ps), func(i int) error {
		if err := ps[i].f.Sync(); err != nil {
			return fmt.Errorf("writing %s: %w", ps[i].nodePath, err)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	for _, p := range ps {
		err := p.f.Close()
		p.f = nil
		if err != nil {
			return nil, fmt.Errorf("writing %s: %w", p.nodePath, err)
		}
	}
	touched := map[*os.Root]bool{}
	for _, p := range ps {
		crashpoint("rename over " + p.path)
		if err := p.dir.Rename(p.tmp, p.name); err != nil {
			return nil, fmt.Errorf("writing %s: %w", p.nodePath, err)
		}
		p.tmp = ""
		touched[p.dir] = true
		if p.chmod != 0 {
			crashpoint("set the mode of " + p.path)
			if err := p.dir.Chmod(p.name, p.chmod); err != nil {
				return nil, fmt.Errorf("writing %s: %w", p.nodePath, err)
			}
		}
	}
	return touched, nil
}

// syncRoots syncs each directory once, all at the same time: renames live
// in their directories, which must be synced for the renames to last.
func syncRoots(set map[*os.Root]bool) error {
	roots := make([]*os.Root, 0, len(set))
	for r := range set {
		roots = append(roots, r)
	}
	return parallel(len(roots), func(i int) error { return syncRoot(roots[i]) })
}

// applyAll makes changes (none Unchanged) whose entries are journaled.
func applyAll(changes []Change, entries []entry) error {
	ds := dirs{}
	defer ds.close()

	// Directories, in plan order: a parent comes before what it holds.
	// Their parents are synced with the other directories, at the end.
	touched := map[*os.Root]bool{}
	for _, c := range changes {
		if !c.Dir || c.Remove { // a directory to remove goes at commit (removeDir)
			continue
		}
		parent, err := ds.get(filepath.Dir(c.real))
		if err != nil {
			return fmt.Errorf("creating %s: %w", c.NodePath, err)
		}
		if err := applyDir(parent, c); err != nil {
			return err
		}
		touched[parent] = true
	}
	crashpoint("directories made")

	// Backups of the files that exist.
	var backups []*pending
	for i, c := range changes {
		e := entries[i]
		if c.Dir || !e.Existed {
			continue
		}
		dir, err := ds.get(filepath.Dir(c.real))
		if err != nil {
			discard(backups)
			return fmt.Errorf("backing up %s: %w", c.NodePath, err)
		}
		data, err := readRegular(dir, filepath.Base(c.real))
		if err != nil {
			discard(backups)
			return fmt.Errorf("backing up %s: %w", c.NodePath, err)
		}
		crashpoint("create temporary file for " + e.Backup)
		tmp, f, err := createTemp(dir, filepath.Base(e.Backup), data, 0o600, -1, -1)
		if err != nil {
			discard(backups)
			return fmt.Errorf("backing up %s: %w", c.NodePath, err)
		}
		backups = append(backups, &pending{dir: dir, tmp: tmp, name: filepath.Base(e.Backup),
			path: e.Backup, nodePath: e.nodePathOf(e.Backup), f: f})
	}
	if err := commitTemps(backups); err != nil {
		return fmt.Errorf("backing up: %w", err)
	}
	crashpoint("backups made")

	// The new contents.
	var writes []*pending
	for _, c := range changes {
		if c.Dir || c.Remove {
			continue
		}
		dir, err := ds.get(filepath.Dir(c.real))
		if err != nil {
			discard(writes)
			return fmt.Errorf("writing %s: %w", c.NodePath, err)
		}
		name := filepath.Base(c.real)
		// A target that is there must still be a regular file: it is
		// replaced, never followed.
		if fi, err := dir.Lstat(name); err == nil && !fi.Mode().IsRegular() {
			discard(writes)
			return fmt.Errorf("writing %s: %w", c.NodePath, ErrNotRegular)
		}
		tempMode := c.Mode
		if c.Secret {
			tempMode = c.Mode & 0o700
		}
		crashpoint("create temporary file for " + c.real)
		tmp, f, err := createTemp(dir, name, c.Data, tempMode, c.UID, c.GID)
		if err != nil {
			discard(writes)
			return fmt.Errorf("writing %s: %w", c.NodePath, err)
		}
		p := &pending{dir: dir, tmp: tmp, name: name, path: c.real, nodePath: c.NodePath, f: f}
		if tempMode != c.Mode {
			p.chmod = c.Mode.Perm()
		}
		writes = append(writes, p)
	}
	renamed, err := renameTemps(writes)
	if err != nil {
		return err
	}
	for d := range renamed {
		touched[d] = true
	}

	// Removals (their backups are in place).
	for _, c := range changes {
		if !c.Remove || c.Dir {
			continue
		}
		dir, err := ds.get(filepath.Dir(c.real))
		if err != nil {
			return fmt.Errorf("removing %s: %w", c.NodePath, err)
		}
		crashpoint("remove " + c.real)
		if err := dir.Remove(filepath.Base(c.real)); err != nil {
			return fmt.Errorf("removing %s: %w", c.NodePath, err)
		}
		touched[dir] = true
	}
	return syncRoots(touched)
}

// readRegular reads the regular file name in dir without following a link
// put in its place.
func readRegular(dir *os.Root, name string) ([]byte, error) {
	f, err := dir.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, ErrNotRegular
	}
	return io.ReadAll(f)
}
