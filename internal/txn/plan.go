package txn

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"syscall"

	"github.com/nodejoin/nodejoin/internal/problem"
)

// Item is one file or directory as a run wants it.
type Item struct {
	// NodePath is the path as the node sees it (with --root /): absolute
	// and clean. Diff resolves it under the root; reports show it as is.
	NodePath string
	Dir      bool        // a directory rather than a file
	Data     []byte      // content of a file
	Mode     fs.FileMode // permission bits
	UID, GID int
	// KeepOwner keeps an existing file's owner (Ganeti's ensure-dirs may
	// have given it to a daemon user); UID and GID apply to new files.
	KeepOwner bool
	// KeepBackup keeps the old content after commit, as Ganeti keeps the
	// backups of keys and certificates.
	KeepBackup bool
	// Secret marks a file holding a key (a private key, hmac.key), set
	// by the plan that knows, never guessed from a mode: no temporary copy
	// of it is ever readable by anyone but its owner, and no digest of it
	// is reported.
	Secret bool
	// Remove asks for the file to be gone (node removal): its old content
	// is kept in a backup until commit, so a rollback puts it back. A file
	// that is not there is unchanged. Data and Mode are not used. For a
	// directory it is rmdir(2) at commit, once the backups of the files
	// removed from it are gone: only an empty one is ever removed, and
	// until the commit it stays as it was.
	Remove bool
}

// Actions of a planned item.
const (
	Create    = "create"
	Replace   = "replace"
	Chmod     = "chmod" // same content, other mode or owner
	Remove    = "remove"
	Unchanged = "unchanged"
)

// Change is an item with what applying it would do.
type Change struct {
	Item
	Action string
	// real is NodePath resolved under the root (Diff): what Apply writes
	// and the journal records.
	real string
	// old mode and owner, for the journal
	oldMode          fs.FileMode
	oldUID, oldGID   int
	contentUnchanged bool
	// old is the content of a file that exists, where Diff read it (not
	// for one to be removed); backup is the name Stage gave its backup.
	old    []byte
	backup string
}

// SHA256 is the hex digest of the new content; "" for a directory, a file
// to be removed (it has none) and a secret, since a digest of a guessable
// secret confirms a guess.
func (c Change) SHA256() string {
	if c.Dir || c.Remove || c.Secret {
		return ""
	}
	sum := sha256.Sum256(c.Data)
	return hex.EncodeToString(sum[:])
}

// ErrNotRegular is returned for a target that exists but is not a regular
// file (or not a directory, for a directory item): it is never replaced.
var ErrNotRegular = errors.New("exists and is not a regular file")

// Diff compares items with what is on disk under root: the one place
// where a plan's node paths meet the root. Each item's node path must be
// absolute and clean, and its directories are resolved inside root
// (Resolve): a path that leads out of it is refused, and the change keeps
// the real path found for Apply. It reads and changes nothing else.
func Diff(root string, items []Item) ([]Change, error) {
	r, err := newResolver(root)
	if err != nil {
		return nil, err
	}
	out := make([]Change, 0, len(items))
	for _, it := range items {
		if !path.IsAbs(it.NodePath) || path.Clean(it.NodePath) != it.NodePath {
			// A relative path or a ".." would be taken from somewhere
			// other than the node's /, "." and "//" hide what is meant.
			return nil, problem.Hint(&OutsideRootError{NodePath: it.NodePath, Why: "not an absolute, clean node path"},
				`a node path starts at the node's "/" and has no ".", ".." or empty component`)
		}
		real, err := r.resolve(it.NodePath)
		if err != nil {
			return nil, err
		}
		c, err := diffOne(it, real)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func diffOne(it Item, real string) (Change, error) {
	c := Change{Item: it, real: real}
	fi, err := os.Lstat(real)
	if errors.Is(err, fs.ErrNotExist) {
		c.Action = Create
		if it.Remove {
			c.Action = Unchanged
		}
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("checking %s: %w", it.NodePath, err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	c.oldMode, c.oldUID, c.oldGID = fi.Mode().Perm(), int(st.Uid), int(st.Gid)
	if it.KeepOwner {
		c.UID, c.GID = c.oldUID, c.oldGID
	}
	sameMeta := c.oldMode == it.Mode&fs.ModePerm && c.oldUID == c.UID && c.oldGID == c.GID
	if it.Dir {
		if !fi.IsDir() {
			return c, fmt.Errorf("%s: exists and is not a directory", it.NodePath)
		}
		if it.Remove {
			c.UID, c.GID, c.Mode = c.oldUID, c.oldGID, c.oldMode
			c.Action = Remove
			return c, nil
		}
		c.Action = Chmod
		if sameMeta {
			c.Action = Unchanged
		}
		return c, nil
	}
	if !fi.Mode().IsRegular() {
		return c, fmt.Errorf("%s: %w", it.NodePath, ErrNotRegular)
	}
	if it.Remove {
		c.UID, c.GID, c.Mode = c.oldUID, c.oldGID, c.oldMode // reported as it is
		c.Action = Remove
		return c, nil
	}
	old, err := os.ReadFile(real)
	if err != nil {
		return c, fmt.Errorf("reading %s: %w", it.NodePath, err)
	}
	c.old = old
	c.contentUnchanged = bytes.Equal(old, it.Data)
	switch {
	case c.contentUnchanged && sameMeta:
		c.Action = Unchanged
	case c.contentUnchanged:
		c.Action = Chmod
	default:
		c.Action = Replace
	}
	return c, nil
}

// Changed reports whether any change does something.
func Changed(cs []Change) bool {
	for _, c := range cs {
		if c.Action != Unchanged {
			return true
		}
	}
	return false
}

// MissingDirs plans the missing levels of the node directory dir under
// root, outermost first, with the given mode and owner: a test root, or a
// node without Ganeti installed, lacks some. dir is cleaned first (a home
// in /etc/passwd may end in "/").
func MissingDirs(root, dir string, mode fs.FileMode, uid, gid int) ([]Item, error) {
	var items []Item
	for d := path.Clean(dir); d != "/" && d != "."; d = path.Dir(d) {
		real, err := Resolve(root, d)
		if err != nil {
			return nil, err
		}
		_, err = os.Lstat(real)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("checking %s: %w", d, err)
		}
		items = append([]Item{{NodePath: d, Dir: true, Mode: mode, UID: uid, GID: gid}}, items...)
	}
	return items, nil
}
