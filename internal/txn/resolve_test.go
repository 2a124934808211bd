package txn

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a link to nobody")
	}
	root := t.TempDir()
	for _, d := range []string{"etc", "usr/local/etc/ssh", "home/real", "srv"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"etc/ssh":     "/usr/local/etc/ssh", // absolute: from the root
		"home/rel":    "real",
		"home/up":     "../srv",
		"home/out":    "../../..",
		"home/abs-up": "/../..",
		"home/loop":   "loop",
		"home/nobody": "real",
		"srv/chain":   "/home/rel",
	}
	for p, target := range links {
		if err := os.Symlink(target, filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Lchown(filepath.Join(root, "home/nobody"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ np, want, wantErr string }{
		{np: "/etc/ssh/ssh_host_rsa_key", want: "usr/local/etc/ssh/ssh_host_rsa_key"},
		{np: "/home/rel/.ssh", want: "home/real/.ssh"},
		{np: "/home/up/x", want: "srv/x"},
		{np: "/srv/chain/.ssh/authorized_keys", want: "home/real/.ssh/authorized_keys"},
		{np: "/home/missing/.ssh", want: "home/missing/.ssh"},
		{np: "/etc/ssh", want: "etc/ssh"}, // the last component is not followed
		{np: "/home/out/.ssh", wantErr: "/home/out/.ssh: leads out of the root (/home/out -> ../../..)"},
		{np: "/home/abs-up/x", wantErr: "/home/abs-up/x: leads out of the root (/home/abs-up -> /../..)"},
		{np: "/home/loop/x", wantErr: "/home/loop/x: too many levels of symbolic links (/home/loop)"},
		{np: "/home/nobody/.ssh", wantErr: "/home/nobody/.ssh: goes through a symbolic link owned by uid 65534 (/home/nobody)"},
	} {
		got, err := Resolve(root, tc.np)
		switch {
		case tc.wantErr != "":
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%s: got %q, %v; want error %q", tc.np, got, err, tc.wantErr)
			}
		case err != nil || got != filepath.Join(root, tc.want):
			t.Errorf("%s: got %q, %v; want %s", tc.np, got, err, filepath.Join(root, tc.want))
		}
	}
	// The node's own root: /.. is /.
	if got, err := Resolve("/", "/../etc/passwd"); err != nil || got != "/etc/passwd" {
		t.Errorf("root /: got %q, %v", got, err)
	}
}

// A directory replaced by a link between the plan and the write (by a user
// who owns its parent): the write fails, nothing is written through it.
func TestDirSwappedForLinkAfterDiff(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	var restarts []string
	opts := testOptions(t, root, &restarts)
	if err := os.MkdirAll(filepath.Join(root, "home/u/.ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	changes, err := Diff(root, []Item{
		{NodePath: "/home/u/.ssh", Dir: true, Mode: 0o700, UID: os.Geteuid(), GID: os.Getegid()},
		item("home/u/.ssh/authorized_keys", "key\n", 0o600),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, "home/u"), filepath.Join(root, "home/moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "home/u")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(outside, ".ssh"), 0o755); err != nil {
		t.Fatal(err)
	}
	tx, err := Begin(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	err = tx.Apply(changes)
	if !errors.Is(err, ErrChanged) {
		t.Errorf("got %v, want %v", err, ErrChanged)
	}
	// The rollback does not act through the link either: it says so and
	// keeps the journal until the link is gone.
	if err := tx.Rollback(context.Background()); !errors.Is(err, ErrChanged) ||
		!strings.HasPrefix(err.Error(), "could not check whether the run made /home/u/.ssh/authorized_keys: ") {
		t.Errorf("rollback: got %v", err)
	}
	if err := os.Remove(filepath.Join(root, "home/u")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, "home/moved"), filepath.Join(root, "home/u")); err != nil {
		t.Fatal(err)
	}
	if err := Recover(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(opts.StateDir); !os.IsNotExist(err) {
		t.Errorf("the journal remains: %v", err)
	}
	fi, err := os.Stat(filepath.Join(outside, ".ssh"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("the outside directory was changed: %v %v", fi.Mode(), err)
	}
	if entries, _ := os.ReadDir(filepath.Join(outside, ".ssh")); len(entries) != 0 {
		t.Errorf("written outside: %v", entries)
	}
}
