package callback

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSuperviseRestarts: a command that keeps exiting is started again
// each time, until the context ends.
func TestSuperviseRestarts(t *testing.T) {
	dir := t.TempDir()
	count := filepath.Join(dir, "starts")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Supervise(ctx, slog.New(slog.DiscardHandler), []string{"sh", "-c", "echo x >> " + count + "; exit 1"}, io.Discard,
			Backoff{Min: 2 * time.Millisecond, Max: 8 * time.Millisecond, Stable: time.Hour})
	}()
	for {
		b, _ := os.ReadFile(count)
		if strings.Count(string(b), "x") >= 5 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Supervise: %v", err)
	}
}

// TestSuperviseStops: when the context ends, the running command gets
// SIGTERM and Supervise returns nil once it is gone.
func TestSuperviseStops(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Supervise(ctx, slog.New(slog.DiscardHandler), []string{"sh", "-c", "echo $$ > " + pidFile + "; exec sleep 600"}, io.Discard, DefaultBackoff)
	}()
	var pid int
	for pid == 0 {
		b, _ := os.ReadFile(pidFile)
		if s := strings.TrimSpace(string(b)); s != "" {
			for _, c := range s {
				pid = pid*10 + int(c-'0')
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Supervise: %v", err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("the command (pid %d) still runs after Supervise returned", pid)
	}
}

// TestSuperviseMissingCommand: a command that cannot be found is an
// error, not a loop.
func TestSuperviseMissingCommand(t *testing.T) {
	err := Supervise(context.Background(), slog.New(slog.DiscardHandler), []string{"/nonexistent/ssh"}, io.Discard, DefaultBackoff)
	if err == nil {
		t.Fatal("no error for a missing command")
	}
}
