package txn

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// Options say where a transaction keeps its journal and lock.
type Options struct {
	StateDir string // real path of the directory holding the journal
	LockFile string // real path of the lock file (in the node's lock directory)
	Log      *slog.Logger
	// Restart runs a recorded restart command again after a rollback.
	Restart func(ctx context.Context, argv []string) error
}

// Tx is one run's transaction. It holds the node's lock until it ends.
type Tx struct {
	opts    Options
	j       journal
	lock    *os.File
	journal string
	now     time.Time
}

// Begin takes the lock, finishes what an interrupted earlier run left in
// the journal, and opens a new transaction.
func Begin(ctx context.Context, opts Options) (*Tx, error) {
	lock, err := takeLock(opts.LockFile)
	if err != nil {
		return nil, err
	}
	tx := &Tx{opts: opts, lock: lock, journal: filepath.Join(opts.StateDir, journalName), now: time.Now()}
	if err := recoverLocked(ctx, opts, tx.journal); err != nil {
		tx.unlock()
		return nil, err
	}
	created, err := mkdirAll(opts.StateDir, 0o700)
	if err != nil {
		tx.unlock()
		return nil, fmt.Errorf("creating the state directory: %w", err)
	}
	tx.j = journal{State: "open", CreatedDirs: created}
	if err := writeJournal(tx.journal, &tx.j); err != nil {
		tx.removeCreatedDirs()
		tx.unlock()
		return nil, err
	}
	crashpoint("journal opened")
	return tx, nil
}

// Recover finishes an interrupted earlier run, if the journal records one;
// it takes the lock only when there is something to do, so that a run that
// changes nothing writes nothing.
func Recover(ctx context.Context, opts Options) error {
	path := filepath.Join(opts.StateDir, journalName)
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	lock, err := takeLock(opts.LockFile)
	if err != nil {
		return err
	}
	defer lock.Close()
	return recoverLocked(ctx, opts, path)
}

func recoverLocked(ctx context.Context, opts Options, path string) error {
	j, err := readJournal(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
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
	return endJournal(path, j)
}

// Apply makes the changes, recording each in the journal before touching it.
func (tx *Tx) Apply(changes []Change) error {
	for _, c := range changes {
		if c.Action == Unchanged {
			continue
		}
		if err := tx.apply(c); err != nil {
			return err
		}
	}
	return nil
}

func (tx *Tx) apply(c Change) error {
	e := entry{Kind: "file", Path: c.Path, Existed: c.Action != Create,
		Mode: c.oldMode, UID: c.oldUID, GID: c.oldGID}
	if c.Dir {
		e.Kind = "dir"
	} else if e.Existed {
		e.Backup = backupName(c.Path, tx.now)
		e.Keep = c.KeepBackup && !c.contentUnchanged
	}
	tx.j.Entries = append(tx.j.Entries, e)
	if err := writeJournal(tx.journal, &tx.j); err != nil {
		return err
	}
	crashpoint("journaled " + c.Path)
	if c.Dir {
		return applyDir(c)
	}
	if e.Existed {
		if err := copyToBackup(c.Path, e.Backup); err != nil {
			return fmt.Errorf("backing up %s: %w", c.NodePath, err)
		}
	}
	if err := writeAtomic(c.Path, c.Data, c.Mode, c.UID, c.GID); err != nil {
		return fmt.Errorf("writing %s: %w", c.NodePath, err)
	}
	return nil
}

func applyDir(c Change) error {
	if c.Action == Create {
		if err := os.Mkdir(c.Path, c.Mode); err != nil {
			return fmt.Errorf("creating %s: %w", c.NodePath, err)
		}
	}
	// Mkdir applies the umask: set the mode explicitly.
	if err := os.Chmod(c.Path, c.Mode); err != nil {
		return fmt.Errorf("setting the mode of %s: %w", c.NodePath, err)
	}
	if err := os.Lchown(c.Path, c.UID, c.GID); err != nil {
		return fmt.Errorf("setting the owner of %s: %w", c.NodePath, err)
	}
	return syncDir(filepath.Dir(c.Path))
}

// RecordRestart journals a restart command before it runs, so that a
// rollback, also one after a kill, runs it again on the old files.
func (tx *Tx) RecordRestart(argv []string) error {
	for _, r := range tx.j.Restarts {
		if slices.Equal(r, argv) {
			return nil
		}
	}
	tx.j.Restarts = append(tx.j.Restarts, argv)
	return writeJournal(tx.journal, &tx.j)
}

// Commit makes the new state final: backups not to be kept are removed,
// then the journal.
func (tx *Tx) Commit() error {
	defer tx.unlock()
	tx.j.State = "committed"
	if err := writeJournal(tx.journal, &tx.j); err != nil {
		return err
	}
	crashpoint("committed")
	finishCommit(&tx.j)
	return endJournal(tx.journal, &tx.j)
}

// Rollback puts every changed file back, re-runs the restart commands on
// the old files and ends the transaction. The error says what could not be
// put back, if anything.
func (tx *Tx) Rollback(ctx context.Context) error {
	defer tx.unlock()
	if err := rollback(ctx, tx.opts, &tx.j); err != nil {
		return err
	}
	return endJournal(tx.journal, &tx.j)
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
	for _, argv := range j.Restarts {
		if opts.Restart == nil {
			break
		}
		if err := opts.Restart(ctx, argv); err != nil {
			// The files are back; a daemon that does not come back on them
			// is reported but does not undo that.
			opts.Log.Warn("restart on the previous state failed", "command", argv, "err", err)
		}
	}
	return nil
}

func finishCommit(j *journal) {
	for _, e := range j.Entries {
		if e.Backup != "" {
			removeTemps(e.Backup)
			if !e.Keep {
				_ = os.Remove(e.Backup)
			}
		}
		if e.Kind == "file" {
			removeTemps(e.Path)
		}
	}
}

// endJournal removes the journal and the state directories its run made.
func endJournal(path string, j *journal) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the journal: %w", err)
	}
	removeTemps(path)
	if err := syncDir(filepath.Dir(path)); err != nil {
		return err
	}
	for i := len(j.CreatedDirs) - 1; i >= 0; i-- {
		_ = os.Remove(j.CreatedDirs[i])
	}
	return nil
}

func (tx *Tx) removeCreatedDirs() {
	for i := len(tx.j.CreatedDirs) - 1; i >= 0; i-- {
		_ = os.Remove(tx.j.CreatedDirs[i])
	}
}

func (tx *Tx) unlock() {
	if tx.lock != nil {
		tx.lock.Close()
		tx.lock = nil
	}
}

// mkdirAll is os.MkdirAll that returns the directories it created,
// outermost first.
func mkdirAll(dir string, mode fs.FileMode) ([]string, error) {
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
	for i, d := range missing {
		if err := os.Mkdir(d, mode); err != nil {
			return missing[:i], err
		}
	}
	return missing, nil
}

// takeLock takes an exclusive flock on path, creating it (and its
// directory) if needed. The lock lives in the node's lock directory, the one
// place a run that changes files leaves a file it did not mean to change.
func takeLock(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating the lock directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the lock %s: %w", path, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("locking %s: another nodejoin program holds it: %w", path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Lock takes another lock file the same way (e.g. Ganeti's ssconf lock).
func Lock(path string) (*os.File, error) { return takeLock(path) }
