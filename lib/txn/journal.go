package txn

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
	Kind    string `json:"kind"` // "file" or "dir"
	Path    string `json:"path"`
	Existed bool   `json:"existed"`
	// Backup holds the old content of an existing file.
	Backup string `json:"backup,omitempty"`
	// Keep the backup after commit, as Ganeti keeps backups of keys.
	Keep bool        `json:"keep,omitempty"`
	Mode fs.FileMode `json:"mode,omitempty"`
	UID  int         `json:"uid"`
	GID  int         `json:"gid"`
}

const journalName = "journal.json"

func readJournal(path string) (*journal, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
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

// rollbackEntry puts one entry back. Every step is idempotent, so a rollback
// killed half way is finished by running it again.
func rollbackEntry(e entry) error {
	switch e.Kind {
	case "dir":
		if !e.Existed {
			if err := os.Remove(e.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("removing %s: %w", e.Path, err)
			}
			return syncParent(e.Path)
		}
		if err := os.Chmod(e.Path, e.Mode); err != nil {
			return fmt.Errorf("restoring the mode of %s: %w", e.Path, err)
		}
		return os.Lchown(e.Path, e.UID, e.GID)
	case "file":
		defer removeTemps(e.Path)
		if !e.Existed {
			if err := os.Remove(e.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("removing %s: %w", e.Path, err)
			}
			return syncParent(e.Path)
		}
		defer removeTemps(e.Backup)
		if _, err := os.Lstat(e.Backup); errors.Is(err, fs.ErrNotExist) {
			// Killed before the backup was complete: the target was not
			// touched yet (it is written only after its backup).
			return nil
		}
		if err := os.Lchown(e.Backup, e.UID, e.GID); err != nil {
			return fmt.Errorf("restoring %s: %w", e.Path, err)
		}
		if err := os.Chmod(e.Backup, e.Mode); err != nil {
			return fmt.Errorf("restoring %s: %w", e.Path, err)
		}
		if err := os.Rename(e.Backup, e.Path); err != nil {
			return fmt.Errorf("restoring %s: %w", e.Path, err)
		}
		return syncDir(filepath.Dir(e.Path))
	}
	return fmt.Errorf("journal entry of unknown kind %q", e.Kind)
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
