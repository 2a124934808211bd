package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodejoin/nodejoin/internal/fixture"
)

// A read-only data directory: the first write fails, and the rollback
// must not report files the run never made, nor leave a journal that
// blocks every later run. The program runs in a private mount namespace
// where the data directory is a read-only bind mount (root cannot write
// there either).
func TestReadOnlyDataDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a private mount namespace")
	}
	for _, tool := range []string{"unshare", "mount", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	bin := filepath.Join(t.TempDir(), "node-daemon-setup")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	c, err := fixture.NewCluster("c1.example.org")
	if err != nil {
		t.Fatal(err)
	}
	doc := fixture.JSON(c.DaemonSetup("node1.c1.example.org"))
	root := fixture.NewRoot(t)
	data := filepath.Join(root, "var/lib/ganeti")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	before, _ := fixture.Tree(root)

	run := func(readOnly bool, args ...string) (int, string, string) {
		argv := append([]string{bin, "--root", root}, args...)
		cmd := exec.Command(argv[0], argv[1:]...)
		if readOnly {
			script := `mount --bind -o ro "$1" "$1" && shift && exec "$@"`
			cmd = exec.Command("unshare", append([]string{"--mount", "--propagation", "private",
				"sh", "-c", script, "sh", data}, argv...)...)
		}
		cmd.Stdin = bytes.NewReader(doc)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, out.String(), errb.String()
	}

	code, _, stderr := run(true)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], ": read-only file system; the previous files were put back") ||
		lines[1] != "node-daemon-setup: hint: nothing on the node changed; fix the cause and run again" {
		t.Errorf("stderr:\n%s", stderr)
	}
	if strings.Contains(stderr, "removing") || strings.Contains(stderr, "could not") {
		t.Errorf("the rollback reports files the run never made:\n%s", stderr)
	}
	if after, _ := fixture.Tree(root); after != before {
		t.Errorf("the tree changed:\n%s\nbefore:\n%s", after, before)
	}
	if code, stdout, _ := run(false, "--status"); code != 0 || !strings.Contains(stdout, `"pending": null`) {
		t.Errorf("--status: exit %d\n%s", code, stdout)
	}
	// Writable again: the next run applies.
	if code, stdout, stderr := run(false); code != 0 || !strings.Contains(stdout, `"changed": true`) {
		t.Errorf("exit %d; stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}
