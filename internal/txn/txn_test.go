package txn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/daemon"
)

// testOptions makes root look like a node's root: its lock directory exists.
func testOptions(t testing.TB, root string, restarts *[]string) Options {
	if err := os.MkdirAll(filepath.Join(root, "var/lock"), 0o755); err != nil {
		t.Fatal(err)
	}
	return Options{
		StateDir: filepath.Join(root, "var/lib/nodejoin"),
		LockFile: filepath.Join(root, "var/lock/nodejoin/nodejoin.lock"),
		Log:      slog.New(slog.NewTextHandler(&strings.Builder{}, nil)),
		Restart: func(_ context.Context, c daemon.Command) error {
			*restarts = append(*restarts, strings.Join(c.Argv(), " "))
			return nil
		},
	}
}

func item(p string, data string, mode fs.FileMode) Item {
	return Item{NodePath: "/" + p, Data: []byte(data), Mode: mode,
		UID: os.Geteuid(), GID: os.Getegid()}
}

// snapshot lists every path under root (but the lock dir) with mode and content.
func snapshot(t *testing.T, root string) map[string]string {
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if strings.HasPrefix(rel, "var/lock") {
			return nil
		}
		fi, _ := os.Lstat(p)
		v := fi.Mode().String()
		if fi.Mode().IsRegular() {
			data, _ := os.ReadFile(p)
			v += " " + string(data)
		}
		out[rel] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func equalSnapshots(t *testing.T, a, b map[string]string) {
	t.Helper()
	for k, v := range a {
		if b[k] != v {
			t.Errorf("%s: before %q, after %q", k, v, b[k])
		}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok {
			t.Errorf("%s: new after rollback (%q)", k, v)
		}
	}
}

// The file has its mode from the start, whatever the umask and the mode of
// the file it replaces.
func TestModeAndUmask(t *testing.T) {
	for _, umask := range []int{0, 0o022, 0o077, 0o777} {
		for _, mode := range []fs.FileMode{0o600, 0o644, 0o440, 0o444, 0o400} {
			for _, old := range []fs.FileMode{0, 0o666, 0o600} {
				root := t.TempDir()
				p := filepath.Join(root, "f")
				if old != 0 {
					if err := os.WriteFile(p, []byte("old"), old); err != nil {
						t.Fatal(err)
					}
					_ = os.Chmod(p, old)
				}
				prev := syscall.Umask(umask)
				err := writeAtomic(p, []byte("new"), mode, -1, -1, mode == 0o440)
				syscall.Umask(prev)
				if err != nil {
					t.Fatal(err)
				}
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != mode {
					t.Errorf("umask %03o, old %03o, mode %03o: got %03o", umask, old, mode, fi.Mode().Perm())
				}
			}
		}
	}
}

func TestCommitAndBackups(t *testing.T) {
	root := t.TempDir()
	var restarts []string
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/key"), []byte("old key"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/conf"), []byte("old conf"), 0o644); err != nil {
		t.Fatal(err)
	}
	key := item("etc/key", "new key", 0o600)
	key.KeepBackup = true
	items := []Item{key, item("etc/conf", "new conf", 0o644), item("etc/new", "x", 0o444)}
	changes, err := Diff(root, items)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{Replace, Replace, Create} {
		if changes[i].Action != want {
			t.Errorf("%s: action %s, want %s", changes[i].NodePath, changes[i].Action, want)
		}
	}
	tx, err := Begin(context.Background(), testOptions(t, root, &restarts))
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Apply(changes); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "etc"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 4 || !strings.HasPrefix(names[2], "key.backup-") {
		t.Fatalf("etc holds %v; want conf, key, one key backup and new", names)
	}
	if !backupRE(names[2]) {
		t.Errorf("backup name %s is not Ganeti's <name>.backup-<YYYY-MM-DD_HH_MM_SS>.<random>", names[2])
	}
	b, _ := os.ReadFile(filepath.Join(root, "etc", names[2]))
	fi, _ := os.Stat(filepath.Join(root, "etc", names[2]))
	if string(b) != "old key" || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup holds %q mode %03o; want the old key, 0600", b, fi.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/nodejoin")); !os.IsNotExist(err) {
		t.Errorf("the state directory remains after commit: %v", err)
	}
	// The same items again: nothing to do.
	changes, _ = Diff(root, items)
	if Changed(changes) {
		t.Errorf("second diff has changes: %+v", changes)
	}
}

func backupRE(name string) bool {
	parts := strings.Split(name, ".")
	return len(parts) == 3 && len(parts[1]) == len("backup-2006-01-02_15_04_05") && len(parts[2]) == 8
}

func TestRollbackRestoresTree(t *testing.T) {
	root := t.TempDir()
	var restarts []string
	if err := os.MkdirAll(filepath.Join(root, "etc/ssh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/ssh/key"), []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "home"), 0o755); err != nil {
		t.Fatal(err)
	}
	opts := testOptions(t, root, &restarts)
	before := snapshot(t, root)
	dir := Item{NodePath: "/home/.ssh", Dir: true, Mode: 0o700,
		UID: os.Geteuid(), GID: os.Getegid()}
	key := item("etc/ssh/key", "new", 0o600)
	key.KeepBackup = true
	changes, err := Diff(root, []Item{dir, key, item("home/.ssh/id", "id", 0o600)})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := Begin(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Apply(changes); err != nil {
		t.Fatal(err)
	}
	if err := tx.RecordRestart(daemon.Builtin("restart", "sshd")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
	equalSnapshots(t, before, snapshot(t, root))
	if len(restarts) != 1 || restarts[0] != "restart sshd" {
		t.Errorf("restarts after rollback: %v", restarts)
	}
}

// An interrupted run's journal is rolled back by the next Recover; a run
// that finds no journal takes no lock and writes nothing.
func TestRecover(t *testing.T) {
	root := t.TempDir()
	var restarts []string
	opts := testOptions(t, root, &restarts)
	if err := Recover(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "var/lock/nodejoin")); !os.IsNotExist(err) {
		t.Fatalf("Recover without a journal wrote something: %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "f"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, root)
	changes, _ := Diff(root, []Item{item("f", "new", 0o600), item("g", "new", 0o600)})
	tx, err := Begin(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Apply(changes); err != nil {
		t.Fatal(err)
	}
	if err := tx.RecordRestart(daemon.Builtin("restart")); err != nil {
		t.Fatal(err)
	}
	tx.unlock() // as if killed: the journal stays
	if err := Recover(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	equalSnapshots(t, before, snapshot(t, root))
	if len(restarts) != 1 {
		t.Errorf("restarts: %v", restarts)
	}
}

func TestNotRegular(t *testing.T) {
	root := t.TempDir()
	if err := os.Symlink("/etc/passwd", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	_, err := Diff(root, []Item{item("link", "x", 0o600)})
	if err == nil || err.Error() != "/link: exists and is not a regular file" {
		t.Errorf("got %v", err)
	}
}

// A lock held by another process: Begin says which process, and returns
// as soon as its context ends.
func TestLockWaitHonoursContext(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("needs flock(1)")
	}
	root := t.TempDir()
	var restarts []string
	opts := testOptions(t, root, &restarts)
	if err := os.MkdirAll(filepath.Dir(opts.LockFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(opts.LockFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	holder := exec.Command("flock", "--exclusive", "--no-fork", opts.LockFile, "sleep", "60")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Process.Kill(); _ = holder.Wait() }()
	for i := 0; !strings.Contains(readLocks(), fmt.Sprintf(" %d ", holder.Process.Pid)); i++ {
		if i > 1000 {
			t.Fatal("flock did not take the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := Begin(ctx, opts)
	want := fmt.Sprintf("locking %s: held by process %d (sleep): context canceled", opts.LockFile, holder.Process.Pid)
	if err == nil || err.Error() != want || !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want %s", err, want)
	}
}

func readLocks() string {
	b, _ := os.ReadFile("/proc/locks")
	return string(b)
}

// The lock file's intent lines remove only empty directories that are
// levels of the state directory: never a file, never anything else.
func TestIntentRemovesOnlyStateDirLevels(t *testing.T) {
	root := t.TempDir()
	var restarts []string
	opts := testOptions(t, root, &restarts)
	precious := filepath.Join(root, "precious")
	other := filepath.Join(root, "other")
	parent := filepath.Dir(opts.StateDir) // var/lib, made by the "killed" run
	for _, d := range []string{other, opts.StateDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(precious, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(parent, "file"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	lock, err := openOwnLock(opts.LockFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeIntent(lock, []string{precious, other, parent, opts.StateDir, filepath.Join(parent, "file")}); err != nil {
		t.Fatal(err)
	}
	lock.Close()
	if err := Recover(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{precious, other, parent, filepath.Join(parent, "file")} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
	if _, err := os.Lstat(opts.StateDir); !os.IsNotExist(err) {
		t.Errorf("the empty state directory remains: %v", err)
	}
}

// Remove takes a file away in the transaction: a rollback puts it back as
// it was, a commit leaves no backup, and a file already gone is unchanged.
func TestRemove(t *testing.T) {
	for _, commit := range []bool{false, true} {
		root := t.TempDir()
		var restarts []string
		opts := testOptions(t, root, &restarts)
		gone := item("etc/ganeti/old.key", "", 0)
		gone.Remove, gone.Secret = true, true
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, gone.NodePath)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, gone.NodePath), []byte("old secret\n"), 0o440); err != nil {
			t.Fatal(err)
		}
		kept := item("etc/ganeti/new", "new\n", 0o644)
		before := snapshot(t, root)
		changes, err := Diff(root, []Item{gone, kept})
		if err != nil {
			t.Fatal(err)
		}
		if changes[0].Action != Remove || changes[0].SHA256() != "" || changes[0].Mode != 0o440 {
			t.Fatalf("planned %s %04o %q, want remove 0440 and no digest", changes[0].Action, changes[0].Mode, changes[0].SHA256())
		}
		tx, err := Begin(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Apply(changes); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(filepath.Join(root, gone.NodePath)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("applied: %s is still there (%v)", gone.NodePath, err)
		}
		if !commit {
			if err := tx.Rollback(context.Background()); err != nil {
				t.Fatal(err)
			}
			equalSnapshots(t, before, snapshot(t, root))
			continue
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if left, _ := filepath.Glob(filepath.Join(root, "etc/ganeti/old.key*")); len(left) != 0 {
			t.Errorf("after commit: %v left", left)
		}
		again, err := Diff(root, []Item{gone})
		if err != nil || again[0].Action != Unchanged {
			t.Errorf("removing again: %v, %v; want unchanged", again, err)
		}
	}
}

// A directory is removed with its files in one transaction, at commit; a
// rollback leaves it and puts its files back; a directory that is not
// empty is never removed.
func TestRemoveDir(t *testing.T) {
	for _, commit := range []bool{false, true} {
		root := t.TempDir()
		var restarts []string
		opts := testOptions(t, root, &restarts)
		dir := item("etc/nodejoin", "", 0o750)
		dir.Dir, dir.Remove = true, true
		file := item("etc/nodejoin/node.json", "", 0)
		file.Remove = true
		if err := os.MkdirAll(filepath.Join(root, dir.NodePath), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(root, dir.NodePath), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, file.NodePath), []byte("{}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, root)
		changes, err := Diff(root, []Item{file, dir})
		if err != nil {
			t.Fatal(err)
		}
		if changes[1].Action != Remove || changes[1].Mode != 0o750 {
			t.Fatalf("planned %s %04o, want remove 0750", changes[1].Action, changes[1].Mode)
		}
		tx, err := Begin(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Apply(changes); err != nil {
			t.Fatal(err)
		}
		if !commit {
			if err := tx.Rollback(context.Background()); err != nil {
				t.Fatal(err)
			}
			equalSnapshots(t, before, snapshot(t, root))
			continue
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(filepath.Join(root, dir.NodePath)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("committed: %s is still there (%v)", dir.NodePath, err)
		}
		again, err := Diff(root, []Item{dir})
		if err != nil || again[0].Action != Unchanged {
			t.Errorf("removing again: %v, %v; want unchanged", again, err)
		}
	}
	root := t.TempDir()
	var restarts []string
	opts := testOptions(t, root, &restarts)
	full := item("d", "", 0o755)
	full.Dir, full.Remove = true, true
	if err := os.MkdirAll(filepath.Join(filepath.Join(root, full.NodePath), "operator"), 0o755); err != nil {
		t.Fatal(err)
	}
	changes, err := Diff(root, []Item{full})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := Begin(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Apply(changes); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(filepath.Join(root, full.NodePath), "operator")); err != nil {
		t.Errorf("the directory's content: %v", err)
	}
}

// WriteFiles replaces each file with its mode; a target that is not a
// regular file is refused before any file is replaced.
func TestWriteFiles(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"a", "b"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	a, b := filepath.Join(root, "a/f"), filepath.Join(root, "b/g")
	if err := os.WriteFile(a, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFiles([]File{{a, []byte("new a"), 0o600}, {b, []byte("new b"), 0o644}}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{a: "-rw------- new a", b: "-rw-r--r-- new b"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(p)
		if got := fi.Mode().String() + " " + string(data); got != want {
			t.Errorf("%s: %q, want %q", p, got, want)
		}
	}
	link := filepath.Join(root, "b/link")
	if err := os.Symlink(a, link); err != nil {
		t.Fatal(err)
	}
	err := WriteFiles([]File{{b, []byte("newer b"), 0o644}, {link, []byte("x"), 0o644}})
	if !errors.Is(err, ErrNotRegular) {
		t.Fatalf("writing over a link: %v, want ErrNotRegular", err)
	}
	if data, _ := os.ReadFile(b); string(data) != "new b" {
		t.Errorf("b/g is %q after the refusal, want it untouched", data)
	}
	if left, _ := filepath.Glob(filepath.Join(root, "b/.*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// A journal as earlier versions wrote it (real paths, the node path beside
// them, the restarts as argument lists) is rolled back as it says: the
// journal keeps the real paths, so the recovery needs no root.
func TestRecoverEarlierJournal(t *testing.T) {
	root := t.TempDir()
	var restarts []string
	opts := testOptions(t, root, &restarts)
	target := filepath.Join(root, "etc/f")
	backup := target + ".backup-2024-01-02_03_04_05.abcdefgh"
	for p, data := range map[string]string{target: "new", backup: "old"} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	journal := fmt.Sprintf(`{"state": "open", "entries": [
  {"kind": "file", "path": %q, "node_path": "/etc/f", "existed": true, "backup": %q, "mode": 420, "uid": %d, "gid": %d},
  {"kind": "file", "path": %q, "existed": false, "uid": 0, "gid": 0}],
 "restarts": [["restart", "sshd"]]}`, target, backup, os.Geteuid(), os.Getegid(), filepath.Join(root, "etc/g"))
	if err := os.WriteFile(filepath.Join(opts.StateDir, JournalName), []byte(journal), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/g"), []byte("made"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Recover(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(target); err != nil || string(data) != "old" {
		t.Errorf("etc/f: %q, %v; want the old content back", data, err)
	}
	if fi, err := os.Stat(target); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("etc/f: %v, %v; want mode 0644 back", fi, err)
	}
	for _, gone := range []string{backup, filepath.Join(root, "etc/g"), filepath.Join(opts.StateDir, JournalName)} {
		if _, err := os.Lstat(gone); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is still there (%v)", gone, err)
		}
	}
	if len(restarts) != 1 || restarts[0] != "restart sshd" {
		t.Errorf("restarts %q, want [restart sshd]", restarts)
	}
}

// TestStage: Stage tells what Apply will do, writing nothing (the join
// record is made from it and written in the same Apply): the backups it
// names are those Apply makes, Old is the content they hold, also of a
// file to remove, which Diff does not read.
func TestStage(t *testing.T) {
	root := t.TempDir()
	var restarts []string
	for p, data := range map[string]string{"etc/key": "old key", "etc/gone": "old gone"} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	key := item("etc/key", "new key", 0o600)
	key.KeepBackup = true
	gone := item("etc/gone", "", 0)
	gone.Remove = true
	changes, err := Diff(root, []Item{key, gone, item("etc/new", "x", 0o644)})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := Begin(context.Background(), testOptions(t, root, &restarts))
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, root)
	staged, err := tx.Stage(changes)
	if err != nil {
		t.Fatal(err)
	}
	equalSnapshots(t, before, snapshot(t, root))
	if len(staged) != 3 {
		t.Fatalf("staged %+v, want three changes", staged)
	}
	k, g, n := staged[0], staged[1], staged[2]
	if !k.Existed || !k.Kept || string(k.Old) != "old key" || k.Mode != 0o640 || !strings.HasPrefix(k.Backup, "/etc/key.backup-") {
		t.Errorf("the replaced key: %+v", k)
	}
	if !g.Existed || g.Kept || string(g.Old) != "old gone" || !strings.HasPrefix(g.Backup, "/etc/gone.backup-") {
		t.Errorf("the removed file: %+v", g)
	}
	if n.Existed || n.Backup != "" || n.Old != nil {
		t.Errorf("the new file: %+v", n)
	}
	if err := tx.Apply(changes); err != nil {
		t.Fatal(err)
	}
	// Until the commit, the backups are where Stage said.
	for _, a := range []Applied{k, g} {
		if data, err := os.ReadFile(filepath.Join(root, a.Backup)); err != nil || string(data) != string(a.Old) {
			t.Errorf("backup %s: %q, %v; want %q", a.Backup, data, err, a.Old)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(root, k.Backup)); err != nil || string(data) != "old key" {
		t.Errorf("the kept backup %s: %q, %v", k.Backup, data, err)
	}
}

// TestRemoveTempsOf: only the temporary files of the named paths go
// ("." + base name + digits), each directory read once for all of them.
func TestRemoveTempsOf(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	gone := []string{filepath.Join(a, ".key123"), filepath.Join(a, ".key.pub9"), filepath.Join(b, ".conf42")}
	kept := []string{filepath.Join(a, ".key"), filepath.Join(a, ".key12a"), filepath.Join(a, "key123"),
		filepath.Join(a, ".other1"), filepath.Join(b, ".key123"), filepath.Join(a, "key")}
	for _, p := range append(gone, kept...) {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removeTempsOf([]string{filepath.Join(a, "key"), filepath.Join(a, "key.pub"), filepath.Join(b, "conf")})
	for _, p := range gone {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is still there (%v)", p, err)
		}
	}
	for _, p := range kept {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s was removed (%v)", p, err)
		}
	}
}

// TestJournalUpdatesAppend: the journal's later versions (a restart
// recorded, the commit) are appended to its file, not written as a new
// file; a reader takes the last whole update of the same journal and stops
// at one cut short, altered or of another journal, as a crash in an append
// may leave them.
func TestJournalUpdatesAppend(t *testing.T) {
	root := t.TempDir()
	var restarts []string
	opts := testOptions(t, root, &restarts)
	changes, err := Diff(root, []Item{item("f", "new", 0o644)})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := Begin(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Apply(changes); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(opts.StateDir, JournalName)
	ino := func() uint64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	first := ino()
	if err := tx.RecordRestart(daemon.Builtin("restart", "sshd")); err != nil {
		t.Fatal(err)
	}
	if ino() != first {
		t.Errorf("recording a restart wrote a new journal file")
	}
	j, err := readJournal(path)
	if err != nil || len(j.Restarts) != 1 || len(j.Entries) != 1 {
		t.Fatalf("journal %+v, %v; want the file and the restart", j, err)
	}
	whole, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}

	other := *j
	other.ID = "another journal"
	data, _ := json.Marshal(other)
	sum := sha256.Sum256(data)
	stale := fmt.Sprintf(`{"sha256":%q,"journal":%s}`+"\n", hex.EncodeToString(sum[:]), data)
	cut := strings.LastIndex(strings.TrimSuffix(string(whole), "\n"), "\n") + 1
	firstVersion, update := whole[:cut], string(whole[cut:])
	for name, c := range map[string]struct {
		tail     string
		restarts int
	}{
		"the update":             {update, 1},
		"cut short":              {update[:len(update)/2], 0},
		"altered":                {strings.Replace(update, "sshd", "sshx", 1), 0},
		"of another journal":     {stale, 0},
		"zeros":                  {strings.Repeat("\x00", 100), 0},
		"the update, then zeros": {update + strings.Repeat("\x00", 100), 1},
		"the update, then stale": {update + stale, 1},
	} {
		// The journal's first version, then what an append left.
		if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(slices.Clone(firstVersion), c.tail...), 0o600); err != nil {
			t.Fatal(err)
		}
		j, err := readJournal(path)
		if err != nil || len(j.Restarts) != c.restarts || len(j.Entries) != 1 {
			t.Errorf("%s: journal %+v, %v; want %d restarts", name, j, err, c.restarts)
		}
	}
}
