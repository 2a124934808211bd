package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/problem"
)

// nobody is the unprivileged user of the attacks below.
const nobody = 65534

// runProg runs prepare-node-join on root with doc on standard input.
func runProg(t *testing.T, doc []byte, args ...string) (code int, stdout, stderr string) {
	var out, errb fixture.SyncBuffer
	code = runProgTo(doc, &out, &errb, args...)
	return code, out.String(), errb.String()
}

func runProgTo(doc []byte, out, errb *fixture.SyncBuffer, args ...string) int {
	env := &cli.Env{Stdin: bytes.NewReader(doc), Stdout: out, Stderr: errb,
		Log: slog.New(slog.NewTextHandler(errb, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	return cli.Run(prog, env, args, program.Run)
}

// asNobodyIn runs the shell script as uid/gid 65534, as a local
// unprivileged user would, with $D naming dir. dir is handed over as an
// open descriptor (/proc/self/fd/3), so the test's own directories (0700
// under $TMPDIR) need not be opened to nobody: only dir's own mode counts.
func asNobodyIn(t *testing.T, dir, script string, args ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a command as nobody")
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cmd := exec.Command("sh", append([]string{"-c", `D=/proc/self/fd/3; ` + script, "sh"}, args...)...)
	cmd.ExtraFiles = []*os.File{d}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("as nobody: %s: %v: %s", script, err, out)
	}
}

// nodeForNobody makes a node root whose lock directory is world-writable
// and sticky, as Debian's /var/lock (/run/lock) is.
func nodeForNobody(t *testing.T) string {
	root := fixture.NewRoot(t)
	if err := os.Chmod(filepath.Join(root, "var/lock"), os.ModeSticky|0o777); err != nil {
		t.Fatal(err)
	}
	return root
}

func prepareDoc(t *testing.T) []byte {
	c, err := fixture.NewCluster("c1.example.org")
	if err != nil {
		t.Fatal(err)
	}
	return fixture.JSON(c.Prepare())
}

func writeFile(t *testing.T, p, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Symbolic links planted by nobody at the lock's place are refused; the
// files they point to are neither created, opened for writing nor
// truncated.
func TestLockSymlinkPlantedByNobody(t *testing.T) {
	root := nodeForNobody(t)
	victims := t.TempDir()
	victim := filepath.Join(victims, "victim")
	writeFile(t, victim, "precious\n", 0o644)
	lockDir := filepath.Join(root, "var/lock")
	asNobodyIn(t, lockDir, `ln -s "$1" "$D/nodejoin.lock" && ln -s "$2" "$D/nodejoin"`, victim, victims)

	code, _, stderr := runProg(t, prepareDoc(t), "--root", root)
	if code != problem.ExitFailed {
		t.Errorf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	want := "prepare-node-join: error: the lock " + filepath.Join(lockDir, "nodejoin") +
		": not a directory (a symbolic link or a file): not safe to use\n"
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr:\n%s\nwant the line %q", stderr, want)
	}
	if got := mustRead(t, victim); got != "precious\n" {
		t.Errorf("the link's target was changed: %q", got)
	}
	if entries, _ := os.ReadDir(victims); len(entries) != 1 {
		t.Errorf("files appeared beside the victim: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/ssh/ssh_host_ed25519_key")); err == nil {
		t.Error("the run went on with a lock it did not own")
	}
}

// Intent lines written by nobody, naming a root-owned file, remove nothing.
func TestLockIntentFromNobody(t *testing.T) {
	root := nodeForNobody(t)
	precious := filepath.Join(t.TempDir(), "precious")
	writeFile(t, precious, "root's\n", 0o600)
	lockDir := filepath.Join(root, "var/lock")
	intent := precious + "\n"
	asNobodyIn(t, lockDir, `printf %s "$1" > "$D/nodejoin.lock" && mkdir "$D/nodejoin" && printf %s "$1" > "$D/nodejoin/nodejoin.lock"`,
		intent)

	code, _, stderr := runProg(t, prepareDoc(t), "--root", root)
	if code == problem.ExitOK {
		t.Errorf("exit 0 with a lock directory owned by nobody; stderr:\n%s", stderr)
	}
	want := fmt.Sprintf("prepare-node-join: error: the lock %s: owned by uid %d, not 0: not safe to use\n",
		filepath.Join(lockDir, "nodejoin"), nobody)
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr:\n%s\nwant the line %q", stderr, want)
	}
	if got := mustRead(t, precious); got != "root's\n" {
		t.Errorf("precious: %q", got)
	}
}

// A lock held by another process: the run says which process holds it and
// goes on once it is released.
func TestLockHeldByAnotherProcess(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("needs flock(1)")
	}
	root := fixture.NewRoot(t)
	lock := filepath.Join(root, "var/lock/nodejoin/nodejoin.lock")
	if err := os.Mkdir(filepath.Dir(lock), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, lock, "", 0o600)
	holder := exec.Command("flock", "--exclusive", "--no-fork", lock, "sleep", "60")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Process.Kill(); _ = holder.Wait() }()

	var out, errb fixture.SyncBuffer
	done := make(chan int, 1)
	doc := prepareDoc(t)
	// Wait until flock holds it: a run that got it first would not wait.
	for i := 0; ; i++ {
		if b, _ := os.ReadFile("/proc/locks"); bytes.Contains(b, []byte(fmt.Sprintf(" %d ", holder.Process.Pid))) {
			break
		}
		if i > 1000 {
			t.Fatal("flock did not take the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	go func() { done <- runProgTo(doc, &out, &errb, "--root", root) }()
	want := fmt.Sprintf(`holder="process %d (sleep)"`, holder.Process.Pid)
	for !strings.Contains(errb.String(), want) {
		select {
		case code := <-done:
			t.Fatalf("the run ended (exit %d) without naming the holder %q; stderr:\n%s", code, want, errb.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if !strings.Contains(errb.String(), `msg="waiting for the lock" prog=prepare-node-join path=`+lock) {
		t.Errorf("stderr:\n%s", errb.String())
	}
	_ = holder.Process.Kill()
	if code := <-done; code != problem.ExitOK {
		t.Errorf("exit %d after the holder went; stderr:\n%s", code, errb.String())
	}
}

// The login user's home is a link out of --root: refused, exit 3, the
// outside directory untouched and nothing changed under the root.
func TestHomeLinkOutOfRoot(t *testing.T) {
	root := fixture.NewRoot(t)
	outside := t.TempDir()
	rel, err := filepath.Rel(root, outside)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(rel, filepath.Join(root, "root")); err != nil {
		t.Fatal(err)
	}
	before, _ := fixture.Tree(root)
	code, stdout, stderr := runProg(t, prepareDoc(t), "--root", root)
	if code != problem.ExitRejected {
		t.Errorf("exit %d, want 3; stderr:\n%s", code, stderr)
	}
	want := "prepare-node-join: error: /root/.ssh/authorized_keys: leads out of the root (/root -> " + rel + ")\n"
	if !strings.HasPrefix(stderr, want) || stdout != "" {
		t.Errorf("stdout %q, stderr:\n%s\nwant first line %q", stdout, stderr, want)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("the outside directory was written: %v", entries)
	}
	if after, _ := fixture.Tree(root); after != before {
		t.Errorf("the root changed:\n%s\nbefore:\n%s", after, before)
	}
}

// A link that stays inside the root is followed as the node sees it: an
// absolute target is taken from the root.
func TestSSHDirLinkInsideRoot(t *testing.T) {
	root := fixture.NewRoot(t)
	if err := os.Remove(filepath.Join(root, "etc/ssh")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "usr/local/etc/ssh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/local/etc/ssh", filepath.Join(root, "etc/ssh")); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runProg(t, prepareDoc(t), "--root", root)
	if code != problem.ExitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/local/etc/ssh/ssh_host_ed25519_key")); err != nil {
		t.Error(err)
	}
	if fi, err := os.Lstat(filepath.Join(root, "etc/ssh")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("etc/ssh is no longer the link: %v", err)
	}
}

// A rollback that cannot put a file back says which file and why, leaves
// a journal that --status and --dry-run show, and the next run after the
// cause is gone finishes the rollback and applies.
func TestRollbackBlockedByImmutableFile(t *testing.T) {
	if _, err := exec.LookPath("chattr"); err != nil || os.Geteuid() != 0 {
		t.Skip("needs root and chattr(1)")
	}
	root := fixture.NewRoot(t)
	key := filepath.Join(root, "etc/ssh/ssh_host_ed25519_key")
	writeFile(t, key, "old private\n", 0o600)
	if out, err := exec.Command("chattr", "+i", key).CombinedOutput(); err != nil {
		t.Skipf("the file system of %s has no immutable files: %s", root, out)
	}
	_ = exec.Command("chattr", "-i", key).Run()
	t.Cleanup(func() { _ = exec.Command("chattr", "-i", key).Run() })
	// The check fails once, after making the new host key immutable: the
	// rollback can then not rename the backup over it (root cannot either).
	mark := filepath.Join(t.TempDir(), "fail")
	writeFile(t, mark, "", 0o600)
	check := fmt.Sprintf(`if [ -e %[1]s ]; then rm %[1]s; chattr +i %[2]s; exit 1; fi`, mark, key)
	writeFile(t, filepath.Join(root, "etc/nodejoin/node.json"), string(fixture.JSON(map[string]any{
		"sshd_check_command":          []string{"/bin/sh", "-c", check},
		"sshd_restart_command":        []string{"/bin/true"},
		"node_daemon_restart_command": []string{"/bin/true"},
	})), 0o644)
	doc := prepareDoc(t)

	code, _, stderr := runProg(t, doc, "--root", root)
	if code != problem.ExitFailed {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	wantErr := "prepare-node-join: error: checking sshd's configuration with the new files: command \"/bin/sh -c " + check +
		"\" exited 1; putting the previous files back failed too: could not put back /etc/ssh/ssh_host_ed25519_key: operation not permitted (its previous content is kept in /etc/ssh/ssh_host_ed25519_key.backup-"
	if len(lines) != 2 || !strings.HasPrefix(lines[0], wantErr) || !strings.HasSuffix(lines[0], ")") ||
		!strings.HasPrefix(lines[1], "prepare-node-join: hint: the journal in the state directory records what is left (--status shows it)") {
		t.Errorf("stderr:\n%s\nwant one error line starting %q, then the hint", stderr, wantErr)
	}

	// --status: the one file left to put back, no content.
	code, stdout, stderr := runProg(t, nil, "--root", root, "--status")
	if code != problem.ExitOK {
		t.Fatalf("--status: exit %d; stderr:\n%s", code, stderr)
	}
	var st struct {
		Journal string
		Pending struct {
			State   string
			Pending []struct{ Path, Kind, Action, Backup string }
		}
	}
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("--status output %q: %v", stdout, err)
	}
	p := st.Pending.Pending
	if st.Journal != "/var/lib/nodejoin/journal.json" || st.Pending.State != "open" || len(p) != 1 ||
		p[0].Path != "/etc/ssh/ssh_host_ed25519_key" || p[0].Action != "restore" ||
		!strings.HasPrefix(p[0].Backup, "/etc/ssh/ssh_host_ed25519_key.backup-") {
		t.Errorf("--status:\n%s", stdout)
	}
	if strings.Contains(stdout, "PRIVATE KEY") || strings.Contains(stdout, "old private") {
		t.Errorf("--status printed content:\n%s", stdout)
	}

	// --dry-run names it too, and changes nothing.
	code, _, stderr = runProg(t, doc, "--root", root, "--dry-run")
	if code != problem.ExitOK || !strings.Contains(stderr, `path=/etc/ssh/ssh_host_ed25519_key action=restore`) {
		t.Errorf("--dry-run: exit %d; stderr:\n%s", code, stderr)
	}

	// Still immutable: the next run stops before anything else.
	if code, _, stderr = runProg(t, doc, "--root", root); code != problem.ExitFailed ||
		!strings.Contains(stderr, "rolling back an interrupted run: could not put back /etc/ssh/ssh_host_ed25519_key: operation not permitted") {
		t.Errorf("run while immutable: exit %d; stderr:\n%s", code, stderr)
	}

	// The cause removed: the next run finishes the rollback, then applies.
	if out, err := exec.Command("chattr", "-i", key).CombinedOutput(); err != nil {
		t.Fatalf("chattr -i: %v: %s", err, out)
	}
	code, stdout, stderr = runProg(t, doc, "--root", root)
	if code != problem.ExitOK || !strings.Contains(stdout, `"changed": true`) {
		t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if got := mustRead(t, key); !strings.Contains(got, "PRIVATE KEY") {
		t.Errorf("host key after the run: %q", got)
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/nodejoin/journal.json")); !os.IsNotExist(err) {
		t.Errorf("the journal remains: %v", err)
	}
	if code, stdout, _ = runProg(t, nil, "--root", root, "--status"); code != problem.ExitOK || !strings.Contains(stdout, `"pending": null`) {
		t.Errorf("--status after: %s", stdout)
	}
}
