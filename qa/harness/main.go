package harness

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
)

var (
	openMu sync.Mutex
	open   = map[*Lab]bool{}
)

func register(l *Lab)   { openMu.Lock(); open[l] = true; openMu.Unlock() }
func unregister(l *Lab) { openMu.Lock(); delete(open, l); openMu.Unlock() }

func (l *Lab) closed() bool { openMu.Lock(); defer openMu.Unlock(); return !open[l] }

// Main runs the tests and tears down open labs when the test process gets
// SIGINT or SIGTERM (t.Cleanup does not run then), before dying of that
// signal. Use it as: func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }.
// A process killed outright (SIGKILL, a -timeout panic) takes its hosts along
// through Pdeathsig; the next New sweeps its namespaces and directory.
func Main(m *testing.M) int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s, ok := <-sigs
		if !ok {
			return
		}
		openMu.Lock()
		labs := make([]*Lab, 0, len(open))
		for l := range open {
			labs = append(labs, l)
		}
		openMu.Unlock()
		for _, l := range labs {
			_ = l.Close()
		}
		signal.Reset(s)
		_ = syscall.Kill(os.Getpid(), s.(syscall.Signal))
	}()
	code := m.Run()
	signal.Stop(sigs)
	return code
}
