package txn

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/nodejoin/nodejoin/internal/problem"
)

// ErrOutsideRoot is a node path whose directories lead out of the root
// (--root) or through a symbolic link someone else could have planted.
var ErrOutsideRoot = errors.New("leads out of the root")

// OutsideRootError is a refused path: exit 3, nothing changed.
type OutsideRootError struct {
	NodePath string // the path asked for
	Link     string // the node path of the link that leads out; "" for a path refused as written
	Why      string
}

func (e *OutsideRootError) Error() string {
	if e.Link == "" {
		return fmt.Sprintf("%q: %s", e.NodePath, e.Why)
	}
	return fmt.Sprintf("%s: %s (%s)", e.NodePath, e.Why, e.Link)
}

// ExitCode is 3: the node's files are not fit to be written, nothing was.
func (*OutsideRootError) ExitCode() int { return problem.ExitRejected }

func (*OutsideRootError) Unwrap() error { return ErrOutsideRoot }

const hintOutsideRoot = "every path is resolved inside --root, as the node itself would see it; replace the link with a directory or a link that stays inside the root"

// maxLinks is the kernel's limit on links followed in one path (MAXSYMLINKS).
const maxLinks = 40

// Resolve maps the node path np to a real path under root with no symbolic
// link in its directories, resolving each component as the node would see
// it: a relative link from its directory, an absolute one from the root.
// A link is followed only where it stays inside the root and belongs to
// root or to the user running the program (a link owned by anyone else,
// e.g. in a login user's home, may have been planted to redirect root's
// writes). The last component is not followed: Diff refuses a target that
// is not a regular file. A missing component ends the walk: the rest is
// taken as it is.
func Resolve(root, np string) (string, error) {
	r, err := newResolver(root)
	if err != nil {
		return "", err
	}
	return r.resolve(np)
}

// resolver resolves the node paths of one plan (Diff, MissingDirs): the
// root once, and each directory once for all the files in it (an ssconf
// update has some fifteen in one directory).
type resolver struct {
	root string
	dirs map[string]string // node directory -> real path
}

func newResolver(root string) (*resolver, error) {
	// The root itself is the operator's: it may be reached through links
	// (and may not exist yet: a dry run of cluster-init).
	if real, err := filepath.EvalSymlinks(root); err == nil {
		root = real
	} else if errors.Is(err, fs.ErrNotExist) {
		root = filepath.Clean(root)
	} else {
		return nil, fmt.Errorf("resolving --root %s: %w", root, err)
	}
	return &resolver{root: root, dirs: map[string]string{}}, nil
}

func (r *resolver) resolve(np string) (string, error) {
	clean := path.Clean("/" + np)
	dir, last := path.Split(clean)
	if real, ok := r.dirs[dir]; ok {
		return filepath.Join(real, last), nil
	}
	real, err := resolveDir(r.root, np, strings.Split(strings.Trim(dir, "/"), "/"))
	if err != nil {
		return "", err
	}
	r.dirs[dir] = real
	return filepath.Join(real, last), nil
}

// resolveDir walks the directory components rest of np.
func resolveDir(root, np string, rest []string) (string, error) {
	var done []string // resolved node path components, none a link
	links := 0
	linkName := np // the last link followed, for the error
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				if root == "/" {
					continue // the node's /.. is /
				}
				return "", refused(np, linkName, "leads out of the root")
			}
			done = done[:len(done)-1]
			continue
		}
		real := filepath.Join(root, filepath.Join(done...), c)
		fi, err := os.Lstat(real)
		if errors.Is(err, fs.ErrNotExist) {
			done = append(done, c)
			continue // nothing below exists either: no link to follow
		}
		if err != nil {
			return "", fmt.Errorf("resolving %s: %w", np, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, c)
			continue
		}
		linkNode := "/" + path.Join(path.Join(done...), c)
		if uid := int(fi.Sys().(*syscall.Stat_t).Uid); uid != 0 && uid != os.Geteuid() {
			return "", refused(np, linkNode, fmt.Sprintf("goes through a symbolic link owned by uid %d", uid))
		}
		if links++; links > maxLinks {
			return "", refused(np, linkNode, "too many levels of symbolic links")
		}
		target, err := os.Readlink(real)
		if err != nil {
			return "", fmt.Errorf("resolving %s: %w", np, err)
		}
		if strings.HasPrefix(target, "/") {
			done = nil
		}
		// The target's components are walked like the rest, so that a
		// ".." in it is checked against the root and links in it are
		// resolved too.
		rest = append(strings.Split(target, "/"), rest...)
		linkName = linkNode + " -> " + target
	}
	return filepath.Join(root, filepath.Join(done...)), nil
}

func refused(np, link, why string) error {
	return problem.Hint(&OutsideRootError{NodePath: np, Link: link, Why: why}, hintOutsideRoot)
}
