package txn

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/nodejoin/nodejoin/internal/daemon"
)

// Status is what an unfinished transaction's journal leaves to do, as the
// files are now: node paths and actions, never content.
type Status struct {
	// State is "open" (a rollback is pending) or "committed" (only the
	// cleanup of backups is).
	State    string           `json:"state"`
	Pending  []PendingStep    `json:"pending"`
	Restarts []daemon.Command `json:"restarts,omitempty"`
}

// PendingStep is one thing the next run will do before anything else.
type PendingStep struct {
	Path   string `json:"path"`
	Kind   string `json:"kind"`   // "file" or "dir"
	Action string `json:"action"` // "restore", "remove", "restore-mode", "remove-backup"
	Backup string `json:"backup,omitempty"`
}

// Pending reads the journal without the lock and without changing
// anything; nil means there is none.
func Pending(opts Options) (*Status, error) {
	j, err := readJournal(filepath.Join(opts.StateDir, JournalName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st := &Status{State: j.State, Pending: []PendingStep{}, Restarts: j.Restarts}
	for i := len(j.Entries) - 1; i >= 0; i-- {
		e := j.Entries[i]
		step := PendingStep{Path: e.nodePath(), Kind: e.Kind}
		if e.Backup != "" && exists(e.Backup) {
			step.Backup = e.nodePathOf(e.Backup)
		}
		switch {
		case j.State == "committed":
			if step.Backup == "" || e.Keep {
				continue
			}
			step.Action = "remove-backup"
		case !e.Existed:
			if !exists(e.Path) {
				continue
			}
			step.Action = "remove"
		case e.Kind == "dir":
			if sameMeta(e) {
				continue
			}
			step.Action = "restore-mode"
		default:
			if step.Backup == "" || untouchedPath(e) {
				continue
			}
			step.Action = "restore"
		}
		st.Pending = append(st.Pending, step)
	}
	return st, nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func untouchedPath(e entry) bool {
	dir, err := pinDir(filepath.Dir(e.Path))
	if err != nil {
		return false
	}
	defer func() { _ = dir.Close() }()
	return untouched(dir, filepath.Base(e.Path), filepath.Base(e.Backup), e)
}

func sameMeta(e entry) bool {
	fi, err := os.Lstat(e.Path)
	if err != nil {
		return false
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fi.Mode().Perm() == e.Mode.Perm() && int(st.Uid) == e.UID && int(st.Gid) == e.GID
}
