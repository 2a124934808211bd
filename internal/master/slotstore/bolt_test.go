package slotstore

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestBoltContract(t *testing.T) {
	runContract(t, func(t *testing.T) func() Backend {
		b, err := OpenBolt(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		// One process, one handle: every client of the test is this one.
		return func() Backend { return b }
	}, 2)
}

// The helper process of the tests below: it opens the store in
// $SLOTSTORE_DIR and either says whether that worked or adds slots until
// it is killed.
func TestMain(m *testing.M) {
	if dir := os.Getenv("SLOTSTORE_DIR"); dir != "" {
		os.Exit(helper(dir, os.Getenv("SLOTSTORE_DO")))
	}
	os.Exit(m.Run())
}

func helper(dir, do string) int {
	b, err := OpenBolt(dir)
	if err != nil {
		os.Stderr.WriteString(err.Error())
		return 3
	}
	defer b.Close()
	if do != "add" {
		return 0
	}
	s := New(b, Options{})
	os.Stdout.WriteString("open\n")
	for {
		if _, err := s.Add(context.Background(), NewSlot{Config: make([]byte, 64<<10)}); err != nil {
			os.Stderr.WriteString(err.Error())
			return 1
		}
	}
}

func helperCmd(t *testing.T, dir, do string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "SLOTSTORE_DIR="+dir, "SLOTSTORE_DO="+do)
	return cmd
}

func TestBoltSecondProcessIsRefused(t *testing.T) {
	dir := t.TempDir()
	b, err := OpenBolt(dir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := helperCmd(t, dir, "").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("second process: %v, %s", err, out)
	}
	want := "opening " + filepath.Join(dir, BoltFile) + ": store is open in another process (another join-service is running on this data dir?)"
	if string(out) != want {
		t.Fatalf("second process said %q, want %q", out, want)
	}
	b.Close()
	if out, err := helperCmd(t, dir, "").CombinedOutput(); err != nil {
		t.Fatalf("after close: %v %s", err, out)
	}
	fi, err := os.Stat(filepath.Join(dir, BoltFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("store file: %v %v", fi.Mode(), err)
	}
}

// A process killed while it writes leaves a store that opens, with every
// slot whole: its record and its config.
func TestBoltKilledMidWrite(t *testing.T) {
	dir := t.TempDir()
	cmd := helperCmd(t, dir, "add")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := out.Read(buf); err != nil || string(buf) != "open\n" {
		t.Fatalf("helper: %q %v", buf, err)
	}
	time.Sleep(300 * time.Millisecond) // let it commit a few slots
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()

	b, err := OpenBolt(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	items, err := b.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	records, configs := 0, 0
	for _, it := range items {
		switch {
		case strings.HasPrefix(it.Key, slotPrefix):
			records++
			if _, err := decodeRecord(it); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(it.Key, configPrefix):
			configs++
			if _, text, err := decodeConfig(it.Value); err != nil || len(text) != 64<<10 {
				t.Fatalf("%s: %d bytes, %v", it.Key, len(text), err)
			}
		}
	}
	if records == 0 || records != configs {
		t.Fatalf("%d records, %d configs after the kill", records, configs)
	}
	if list, err := New(b, Options{}).List(ctx); err != nil || len(list) != records {
		t.Fatalf("list: %d %v", len(list), err)
	}
}

func TestBoltReopenKeepsSlots(t *testing.T) {
	dir := t.TempDir()
	b, err := OpenBolt(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := New(b, Options{}).Add(ctx, NewSlot{Config: []byte("c")})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	b, err = OpenBolt(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s := New(b, Options{})
	if g, err := s.Fetch(ctx, a.Slot.UUID, a.Secret); err != nil || string(g.Config) != "c" {
		t.Fatalf("after reopen: %v %+v", err, g)
	}
	// Revisions go on growing across a reopen.
	rev, err := s.SetConfig(ctx, a.Slot.UUID, []byte("d"))
	if err != nil || rev != 2 {
		t.Fatalf("set-config: %d %v", rev, err)
	}
}
