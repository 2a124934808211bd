package harness

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// Program is TB for a program that starts labs (qa/demo, qa/bench) rather
// than a test: Fatalf and Skip tear every lab down and exit, and so do
// Ctrl-C and SIGTERM.
type Program struct {
	name     string
	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

// NewProgram returns the TB of the program name, which prefixes its lines.
func NewProgram(name string) *Program {
	p := &Program{name: name}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "\n%s: %v: tearing the lab down\n", name, s)
		p.Exit(130)
	}()
	return p
}

// Helper implements TB.
func (p *Program) Helper() {}

// Logf writes a line to standard error.
func (p *Program) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, p.name+": "+format+"\n", args...)
}

// Errorf logs and marks the program failed.
func (p *Program) Errorf(format string, args ...any) {
	p.Logf(format, args...)
	p.mu.Lock()
	p.failed = true
	p.mu.Unlock()
}

// Fatalf logs, tears down and exits 1.
func (p *Program) Fatalf(format string, args ...any) { p.Logf(format, args...); p.Exit(1) }

// Skip says why the program cannot run (e.g. not root), tears down and exits 1.
func (p *Program) Skip(args ...any) { p.Logf("%s", fmt.Sprint(args...)); p.Exit(1) }

// Cleanup registers f for Teardown.
func (p *Program) Cleanup(f func()) { p.mu.Lock(); p.cleanups = append(p.cleanups, f); p.mu.Unlock() }

// Failed reports whether Errorf was called.
func (p *Program) Failed() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.failed }

// Teardown runs the cleanups, last first, once.
func (p *Program) Teardown() {
	p.mu.Lock()
	cs := p.cleanups
	p.cleanups = nil
	p.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
}

// Exit tears down and ends the process with code.
func (p *Program) Exit(code int) {
	p.Teardown()
	os.Exit(code)
}
