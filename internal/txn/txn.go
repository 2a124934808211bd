package txn

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodejoin/nodejoin/internal/daemon"
	"github.com/nodejoin/nodejoin/internal/problem"
)

// Options say where a transaction keeps its journal and lock.
type Options struct {
	StateDir string // real path of the directory holding the journal
	LockFile string // real path of the lock file (in the node's lock directory)
	Log      *slog.Logger
	// Restart runs a recorded restart command again after a rollback.
	Restart func(ctx context.Context, c daemon.Command) error
}

// Tx is one run's transaction. It holds the node's lock until it ends.
type Tx struct {
	opts    Options
	j       journal
	lock    *os.File
	journal string
	now     time.Time
	written bool // the journal is on disk
}

// Begin takes the lock, finishes what an interrupted earlier run left in
// the journal, and opens a new transaction.
func Begin(ctx context.Context, opts Options) (*Tx, error) {
	lock, err := takeLock(ctx, opts)
	if err != nil {
		return nil, err
	}
	tx := &Tx{opts: opts, lock: lock, journal: filepath.Join(opts.StateDir, JournalName), now: time.Now()}
	if err := recoverLocked(ctx, opts, lock, tx.journal); err != nil {
		tx.unlock()
		return nil, err
	}
	// The state directory's missing levels are written down in the lock
	// file before they are made: the journal cannot record them until
	// they exist, and a kill in between must not leave them behind.
	missing, err := missingLevels(opts.StateDir)
	if err == nil {
		err = writeIntent(lock, missing)
	}
	if err != nil {
		tx.unlock()
		return nil, err
	}
	crashpoint("state directory intent recorded")
	created, err := mkdirAll(missing, opts.StateDir)
	tx.j = journal{ID: newID(), State: "open", CreatedDirs: created}
	if err != nil {
		tx.removeCreatedDirs()
		tx.unlock()
		return nil, fmt.Errorf("creating the state directory: %w", err)
	}
	crashpoint("state directory created")
	// The journal is first written by Apply or RecordRestart: until then
	// there is nothing to put back, and the lock file's intent names the
	// state directory levels made.
	return tx, nil
}

// Recover finishes an interrupted earlier run, if the journal records one;
// it takes the lock only when there is something to do, so that a run that
// changes nothing writes nothing.
func Recover(ctx context.Context, opts Options) error {
	path := filepath.Join(opts.StateDir, JournalName)
	_, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) && len(readIntentFile(opts)) == 0 {
		return nil
	}
	lock, err := takeLock(ctx, opts)
	if err != nil {
		return err
	}
	defer lock.Close()
	return recoverLocked(ctx, opts, lock, path)
}

func recoverLocked(ctx context.Context, opts Options, lock *os.File, path string) error {
	j, err := readJournal(path)
	if errors.Is(err, fs.ErrNotExist) {
		// Killed before the journal was written: only state directory
		// levels, and the journal's temporary file, may have been made.
		removeTemps(path)
		removeDirs(opts.StateDir, readIntent(lock))
		return writeIntent(lock, nil)
	}
	if err != nil {
		return err
	}
	if j.State == "committed" {
		opts.Log.Info("finishing the commit of an interrupted run")
		finishCommit(j)
	} else {
		opts.Log.Warn("an earlier run was interrupted; putting its files back")
		if err := rollback(ctx, opts, j); err != nil {
			return fmt.Errorf("rolling back an interrupted run: %w", err)
		}
	}
	if err := endJournal(path, j); err != nil {
		return err
	}
	return writeIntent(lock, nil)
}

// Apply makes the changes, recording all of them in the journal before
// touching any (see batch.go for the order of the writes).
func (tx *Tx) Apply(changes []Change) error {
	var todo []Change
	var entries []entry
	for _, c := range changes {
		if c.Action == Unchanged {
			continue
		}
		e := entry{Kind: "file", Path: c.real, NodePath: c.NodePath, Existed: c.Action != Create,
			Mode: c.oldMode, UID: c.oldUID, GID: c.oldGID}
		if c.Dir {
			e.Kind = "dir"
			e.RemoveAtCommit = c.Remove
		} else if e.Existed {
			e.Backup = tx.backupOf(&c)
			e.Keep = c.KeepBackup && !c.contentUnchanged
		}
		todo, entries = append(todo, c), append(entries, e)
	}
	if len(todo) == 0 {
		return nil
	}
	tx.j.Entries = append(tx.j.Entries, entries...)
	if err := tx.writeJournal(); err != nil {
		return err
	}
	crashpoint(fmt.Sprintf("journaled %d changes", len(todo)))
	return applyAll(todo, entries)
}

// writeJournal writes the journal's first version, then appends the
// later ones.
func (tx *Tx) writeJournal() error {
	if tx.written {
		return appendJournal(tx.journal, &tx.j)
	}
	if err := writeJournal(tx.journal, &tx.j); err != nil {
		return err
	}
	tx.written = true
	return nil
}

// applyDir makes or chmods one directory in its pinned parent; the parent
// is synced by the caller.
func applyDir(parent *os.Root, c Change) error {
	name := filepath.Base(c.real)
	if c.Action == Create {
		if err := parent.Mkdir(name, c.Mode); err != nil {
			return fmt.Errorf("creating %s: %w", c.NodePath, err)
		}
	}
	// Relative to the pinned parent, a link put in the directory's place
	// is not followed out of it (os.Root); Lchown never follows one.
	if err := parent.Lchown(name, c.UID, c.GID); err != nil {
		return fmt.Errorf("setting the owner of %s: %w", c.NodePath, err)
	}
	// Mkdir applies the umask: set the mode explicitly.
	if err := parent.Chmod(name, c.Mode); err != nil {
		return fmt.Errorf("setting the mode of %s: %w", c.NodePath, err)
	}
	return nil
}

// removeDir removes an empty directory in its pinned parent, at commit:
// the backups of the files removed from it stay in it until then.
// rmdir(2) never takes anything that is in it; one that is not empty by
// then (something was put in it since the plan) stays.
func removeDir(e entry) {
	parent, err := pinDir(filepath.Dir(e.Path))
	if err != nil {
		return
	}
	defer func() { _ = parent.Close() }()
	name := filepath.Base(e.Path)
	if fi, err := parent.Lstat(name); err != nil || !fi.IsDir() {
		return
	}
	if parent.Remove(name) == nil {
		_ = syncRoot(parent)
	}
}

// Applied is one change as Apply makes it: what was there before, and
// where its old content is kept.
type Applied struct {
	NodePath string
	Dir      bool
	Existed  bool
	// Mode, UID and GID are the old ones, for what existed.
	Mode     fs.FileMode
	UID, GID int
	// Old is the content of a file that existed: what its backup holds.
	Old []byte
	// Backup is the node path of the old content of a file that existed;
	// it is there until the commit, and after it only where Kept.
	Backup string
	Kept   bool
}

// Stage tells, for each of changes that does something, what Apply will
// do with it, without writing anything: it names the backups, and Apply
// then uses those names. A plan that keeps a record of what it changes
// (the join record) makes that record from it and has it written in the
// same Apply as the changes, in the same phases.
func (tx *Tx) Stage(changes []Change) ([]Applied, error) {
	var out []Applied
	for i := range changes {
		c := &changes[i]
		if c.Action == Unchanged {
			continue
		}
		a := Applied{NodePath: c.NodePath, Dir: c.Dir, Existed: c.Action != Create,
			Mode: c.oldMode, UID: c.oldUID, GID: c.oldGID}
		if a.Existed && !c.Dir {
			a.Backup = entry{Path: c.real, NodePath: c.NodePath}.nodePathOf(tx.backupOf(c))
			a.Kept = c.KeepBackup && !c.contentUnchanged
			a.Old = c.old
			if c.Remove { // Diff did not read it
				old, err := readOld(*c)
				if err != nil {
					return nil, fmt.Errorf("backing up %s: %w", c.NodePath, err)
				}
				a.Old = old
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// backupOf is the name of c's backup: the one Stage gave it, else a new
// one, kept in c.
func (tx *Tx) backupOf(c *Change) string {
	if c.backup == "" {
		c.backup = backupName(c.real, tx.now)
	}
	return c.backup
}

// readOld reads a file that exists, in its pinned directory, as its
// backup is made.
func readOld(c Change) ([]byte, error) {
	dir, err := pinDir(filepath.Dir(c.real))
	if err != nil {
		return nil, err
	}
	defer func() { _ = dir.Close() }()
	return readRegular(dir, filepath.Base(c.real))
}

// CreatedStateDirs are the levels of the state directory this
// transaction made (real paths); they go when it ends, unless a file was
// left in them.
func (tx *Tx) CreatedStateDirs() []string { return slices.Clone(tx.j.CreatedDirs) }

// ReleaseStateDirs adds levels of the state directory that an earlier
// run made and kept for a file it left there (the join record) to those
// removed when this transaction ends, if they are empty by then. Only
// the state directory and its parents are ever removed (removeDirs).
// Before the journal is first written, the write that comes next (Apply's)
// records them.
func (tx *Tx) ReleaseStateDirs(dirs []string) error {
	for _, d := range dirs {
		if !slices.Contains(tx.j.CreatedDirs, d) {
			tx.j.CreatedDirs = append(tx.j.CreatedDirs, d)
		}
	}
	if !tx.written {
		return nil
	}
	return tx.writeJournal()
}

// RecordRestart journals a restart command before it runs, so that a
// rollback, also one after a kill, runs it again on the old files.
func (tx *Tx) RecordRestart(c daemon.Command) error {
	for _, r := range tx.j.Restarts {
		if slices.Equal(r.Argv(), c.Argv()) {
			return nil
		}
	}
	tx.j.Restarts = append(tx.j.Restarts, c)
	return tx.writeJournal()
}

// Commit makes the new state final: backups not to be kept are removed,
// then the journal.
//
// Only backups need the "committed" state on disk: once one is removed the
// run cannot be rolled back. Without backups, removing the journal is the
// commit, and until then a kill rolls the run back.
func (tx *Tx) Commit() error {
	defer tx.unlock()
	if tx.written && tx.hasBackups() {
		tx.j.State = "committed"
		if err := tx.writeJournal(); err != nil {
			return err
		}
		crashpoint("committed")
	}
	finishCommit(&tx.j)
	if !tx.written {
		removeDirs(tx.opts.StateDir, tx.j.CreatedDirs)
		return writeIntent(tx.lock, nil)
	}
	if err := endJournal(tx.journal, &tx.j); err != nil {
		return err
	}
	return writeIntent(tx.lock, nil)
}

// hasBackups says whether the commit must be journaled first: it removes
// backups, or directories (removeDir), after which a kill must finish the
// commit rather than roll back.
func (tx *Tx) hasBackups() bool {
	for _, e := range tx.j.Entries {
		if e.Backup != "" || e.RemoveAtCommit {
			return true
		}
	}
	return false
}

// Rollback puts every changed file back, re-runs the restart commands on
// the old files and ends the transaction. The error says what could not be
// put back, if anything.
func (tx *Tx) Rollback(ctx context.Context) error {
	defer tx.unlock()
	if err := rollback(ctx, tx.opts, &tx.j); err != nil {
		return err
	}
	if !tx.written {
		removeDirs(tx.opts.StateDir, tx.j.CreatedDirs)
		return writeIntent(tx.lock, nil)
	}
	if err := endJournal(tx.journal, &tx.j); err != nil {
		return err
	}
	return writeIntent(tx.lock, nil)
}

func rollback(ctx context.Context, opts Options, j *journal) error {
	var errs []error
	for i := len(j.Entries) - 1; i >= 0; i-- {
		crashpoint("rolling back " + j.Entries[i].Path)
		if err := rollbackEntry(j.Entries[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, c := range j.Restarts {
		if opts.Restart == nil {
			break
		}
		if err := opts.Restart(ctx, c); err != nil {
			// The files are back; a daemon that does not come back on them
			// is reported but does not undo that.
			opts.Log.Warn("restart on the previous state failed", "command", c, "err", err)
		}
	}
	return nil
}

func finishCommit(j *journal) {
	var temps []string
	for _, e := range j.Entries {
		if e.Backup != "" {
			temps = append(temps, e.Backup)
			if !e.Keep {
				_ = os.Remove(e.Backup)
			}
		}
		if e.Kind == "file" {
			temps = append(temps, e.Path)
		}
	}
	removeTempsOf(temps)
	for i := len(j.Entries) - 1; i >= 0; i-- { // innermost first
		if e := j.Entries[i]; e.Kind == "dir" && e.RemoveAtCommit {
			removeDir(e)
		}
	}
}

// endJournal removes the journal and the state directories its run made.
func endJournal(path string, j *journal) error {
	stateDir := filepath.Dir(path)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the journal: %w", err)
	}
	removeTemps(path)
	if err := syncDir(filepath.Dir(path)); err != nil {
		return err
	}
	removeDirs(stateDir, j.CreatedDirs)
	return nil
}

// newID is a random journal ID.
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (tx *Tx) removeCreatedDirs() { removeDirs(tx.opts.StateDir, tx.j.CreatedDirs) }

// removeDirs removes those of dirs that are the state directory or one of
// its parents, innermost first, and only where they are empty directories
// (rmdir, never unlink): the list comes from a file, and nothing else may
// ever be removed on its word.
func removeDirs(stateDir string, dirs []string) {
	levels := map[string]bool{}
	for d := filepath.Clean(stateDir); d != filepath.Dir(d); d = filepath.Dir(d) {
		levels[d] = true
	}
	var ok []string
	for _, d := range dirs {
		if levels[d] {
			ok = append(ok, d)
		}
	}
	slices.SortFunc(ok, func(a, b string) int { return len(b) - len(a) })
	for _, d := range ok {
		_ = unix.Rmdir(d)
	}
}

func (tx *Tx) unlock() {
	if tx.lock != nil {
		tx.lock.Close()
		tx.lock = nil
	}
}

// missingLevels lists the levels of dir that do not exist, outermost first.
func missingLevels(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	slices.Reverse(missing)
	return missing, nil
}

// mkdirAll makes the missing levels of dir, parents 0755 and dir itself
// 0700, and returns those it made.
func mkdirAll(missing []string, dir string) ([]string, error) {
	for i, d := range missing {
		mode := fs.FileMode(0o755)
		if d == dir {
			mode = 0o700
		}
		if err := os.Mkdir(d, mode); err != nil {
			return missing[:i], err
		}
		if err := os.Chmod(d, mode); err != nil { // past the umask
			return missing[:i+1], err
		}
	}
	return missing, nil
}

// writeIntent replaces the lock file's content with dirs, one per line,
// and syncs it; nil empties it. The lock file lives in a directory only
// root can write (see openOwnLock), and what is read back is checked again
// (removeDirs).
func writeIntent(lock *os.File, dirs []string) error {
	if err := lock.Truncate(0); err != nil {
		return fmt.Errorf("writing the lock file: %w", err)
	}
	if len(dirs) == 0 {
		return nil
	}
	data := []byte(strings.Join(dirs, "\n") + "\n")
	if _, err := lock.WriteAt(data, 0); err != nil {
		return fmt.Errorf("writing the lock file: %w", err)
	}
	return lock.Sync()
}

// readIntent reads the directories a killed run may have made; a line cut
// short by the kill is ignored.
func readIntent(lock *os.File) []string {
	data, err := io.ReadAll(io.NewSectionReader(lock, 0, 1<<20))
	if err != nil {
		return nil
	}
	var dirs []string
	for _, l := range strings.SplitAfter(string(data), "\n") {
		if strings.HasSuffix(l, "\n") && filepath.IsAbs(strings.TrimSpace(l)) {
			dirs = append(dirs, filepath.Clean(strings.TrimSuffix(l, "\n")))
		}
	}
	return dirs
}

// readIntentFile reads the intent without the lock, to decide whether
// recovery is needed at all; a lock that is not safe to open counts as
// "something to do", so that the locked path reports it.
func readIntentFile(opts Options) []string {
	if _, err := os.Lstat(opts.LockFile); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	f, err := openOwnLock(opts.LockFile)
	if err != nil {
		return []string{opts.LockFile}
	}
	defer f.Close()
	return readIntent(f)
}

// takeLock opens nodejoin's own lock (see openOwnLock) and waits for it.
func takeLock(ctx context.Context, opts Options) (*os.File, error) {
	f, err := openOwnLock(opts.LockFile)
	if err != nil {
		return nil, err
	}
	if err := waitLock(ctx, opts.Log, f); err != nil {
		f.Close()
		return nil, problem.Hint(err, "another nodejoin program is changing this node; run again when it has finished")
	}
	return f, nil
}

// Lock takes another lock file (e.g. Ganeti's ssconf lock), waiting up to
// LockWait or until ctx ends. The file is only locked, never written.
func Lock(ctx context.Context, log *slog.Logger, path string) (*os.File, error) {
	f, err := openForeignLock(path)
	if err != nil {
		return nil, err
	}
	if err := waitLock(ctx, log, f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
