package txn

import (
	"crypto/rand"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/google/renameio/v2"
)

// writeAtomic writes data to path with the given mode and owner (uid -1:
// keep the writer's). The temporary file is created 0600 and given its final
// mode and owner before the first byte, so a secret is never readable by
// others, not even for an instant. renameio.WriteFile is not used: it keeps
// an existing target's mode, even a looser one.
//
// A secret whose final mode lets its group read it (Ganeti's 0440 for
// server.pem, client.pem and hmac.key) is the one exception: its temporary
// file stays 0600 and the mode is set once it is in place, so that no
// temporary copy of a key is ever readable by anyone but its owner.
func writeAtomic(path string, data []byte, mode fs.FileMode, uid, gid int, secret bool) error {
	tempMode := mode
	if secret {
		tempMode = mode & 0o700
	}
	crashpoint("create temporary file for " + path)
	t, err := renameio.NewPendingFile(path, renameio.WithTempDir(filepath.Dir(path)),
		renameio.WithStaticPermissions(tempMode))
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
		if err := os.Chmod(path, mode); err != nil {
			return err
		}
	}
	// renameio gives atomicity, not durability: the rename itself lives in
	// the directory, which must be synced too.
	return syncDir(filepath.Dir(path))
}

// copyToBackup copies the regular file src to a new 0600 file dst.
func copyToBackup(src, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	return writeAtomic(dst, data, 0o600, -1, -1, true)
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
