package callback

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os/exec"
	"syscall"
	"time"
)

// Backoff bounds the supervisor's wait between two starts of ssh: it
// doubles from Min after each quick failure, up to Max, and starts again
// from Min once ssh has stayed up for Stable. Each wait is jittered
// (between half and all of it), so that nodes cut off together do not
// all call the master at the same instant when it comes back.
type Backoff struct {
	Min, Max, Stable time.Duration
}

// DefaultBackoff is callback-setup --run's.
var DefaultBackoff = Backoff{Min: time.Second, Max: time.Minute, Stable: time.Minute}

// Supervise runs argv until ctx ends, starting it again whenever it exits,
// as systemd's Restart=always does with the unit. When ctx ends, ssh gets
// SIGTERM (and SIGKILL after 5 s) and Supervise returns nil.
func Supervise(ctx context.Context, log *slog.Logger, argv []string, stderr io.Writer, b Backoff) error {
	delay := b.Min
	for {
		start := time.Now()
		started, err := runOnce(ctx, argv, stderr)
		if ctx.Err() != nil {
			log.Info("stopped")
			return nil
		}
		if !started {
			// No ssh to run: waiting does not make one appear.
			return fmt.Errorf("starting %s: %w", argv[0], err)
		}
		if time.Since(start) >= b.Stable {
			delay = b.Min
		}
		wait := delay/2 + rand.N(delay/2+1) //nolint:gosec // jitter spreads retries; nothing secret depends on it
		log.Warn("the tunnel ended; starting it again", "err", err, "after", wait.Round(time.Millisecond).String())
		select {
		case <-ctx.Done():
			log.Info("stopped")
			return nil
		case <-time.After(wait):
		}
		delay = min(2*delay, b.Max)
	}
}

// runOnce runs argv to its end, or stops it when ctx ends; started is
// false when it could not be started at all.
func runOnce(ctx context.Context, argv []string, stderr io.Writer) (started bool, err error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	// The supervisor's own signals are its own: ssh is stopped by it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return false, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return true, err
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			return true, err
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			return true, <-done
		}
	}
}
