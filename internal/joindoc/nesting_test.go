package joindoc

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// memoryLimit is the data segment (heap) a node-side program gets in
// TestNestingUnderMemoryLimit: a hundred times what a refused megabyte
// costs it; a pointer string per nesting level once took 24 GB.
const memoryLimit = 256 << 20

// The node-side programs refuse a megabyte of nesting with exit 3 and the
// place where it got too deep, within a bounded heap, and change nothing.
func TestNestingUnderMemoryLimit(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Fatalf("prlimit(1) (util-linux) is needed to limit the programs' memory: %v", err)
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/",
		"github.com/nodejoin/nodejoin/cmd/prepare-node-join", "github.com/nodejoin/nodejoin/cmd/node-daemon-setup")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building: %v\n%s", err, out)
	}
	const size = 1 << 20
	for _, shape := range []struct{ name, in, want string }{
		{"arrays", strings.Repeat("[", size/2) + strings.Repeat("]", size/2),
			"error: invalid input: byte 64: arrays and objects nest deeper than 64 levels\n"},
		{"objects", strings.Repeat(`{"a":`, size/6) + "1" + strings.Repeat("}", size/6),
			"error: invalid input: byte 320: arrays and objects nest deeper than 64 levels\n"},
	} {
		for _, prog := range []string{"prepare-node-join", "node-daemon-setup"} {
			t.Run(prog+"/"+shape.name, func(t *testing.T) {
				root := t.TempDir()
				cmd := exec.Command(prlimit, "--data="+strconv.Itoa(memoryLimit), filepath.Join(bin, prog), "--root", root)
				cmd.Stdin = strings.NewReader(shape.in)
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 3 {
					t.Fatalf("exit %v, want 3; stderr (first 300 bytes):\n%.300s", err, stderr.String())
				}
				if want := prog + ": " + shape.want; stderr.String() != want || stdout.Len() != 0 {
					t.Errorf("stdout %q, stderr %q\nwant stderr %q", stdout.String(), stderr.String(), want)
				}
				if left, _ := os.ReadDir(root); len(left) != 0 {
					t.Errorf("the root is not empty after a refused document: %v", left)
				}
			})
		}
	}
}
