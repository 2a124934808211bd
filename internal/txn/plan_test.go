package txn

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nodejoin/nodejoin/internal/problem"
)

// An item's node path is the node's own, from its "/": Diff refuses one
// that is relative or not clean (exit 3) and looks at nothing, so that no
// plan can name a file outside the root through a "..".
func TestDiffRefusesUncleanNodePath(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(parent, "outside"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, np := range []string{"", "etc/x", "../outside", "/../outside", "/etc/../../outside", "/etc/./x", "//etc/x", "/etc/"} {
		_, err := Diff(root, []Item{{NodePath: np, Data: []byte("x"), Mode: 0o600, UID: os.Geteuid(), GID: os.Getegid()}})
		var oe *OutsideRootError
		if !errors.As(err, &oe) || oe.NodePath != np || problem.ExitCode(err) != problem.ExitRejected {
			t.Errorf("%q: got %v, want a refusal of that node path (exit 3)", np, err)
		}
	}
	if _, err := Diff(root, []Item{{NodePath: "/etc/x", Data: []byte("x"), Mode: 0o600, UID: os.Geteuid(), GID: os.Getegid()}}); err != nil {
		t.Errorf("a clean node path: %v", err)
	}
}

// MissingDirs plans each missing level once, also for a directory written
// with a trailing "/" (a home directory in /etc/passwd may be).
func TestMissingDirsCleansDir(t *testing.T) {
	root := t.TempDir()
	items, err := MissingDirs(root, "/home/u/", 0o700, os.Geteuid(), os.Getegid())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range items {
		got = append(got, it.NodePath)
	}
	if want := []string{"/home", "/home/u"}; !slices.Equal(got, want) {
		t.Fatalf("planned %q, want %q", got, want)
	}
	if _, err := Diff(root, items); err != nil {
		t.Errorf("diffing them: %v", err)
	}
}
