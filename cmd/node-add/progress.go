package main

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/nodejoin/nodejoin/internal/master/join"
)

// progress shows, on a terminal, one status line that is rewritten as
// nodes move through their steps. Elsewhere it prints nothing (the report
// lines and -v logs say it all).
type progress struct {
	mu     sync.Mutex
	w      io.Writer
	tty    bool
	total  int
	done_  int
	failed int
	steps  map[string]string
}

func newProgress(w io.Writer, total int) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, tty: ok && isTerminal(f), total: total, steps: map[string]string{}}
}

func (p *progress) step(node, step string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.steps[node] = step
	p.draw(node + ": " + step)
}

func (p *progress) done(r *join.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.steps, r.Node)
	p.done_++
	if !r.OK {
		p.failed++
	}
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K") // clear the status line before a report line
	}
}

func (p *progress) draw(last string) {
	if !p.tty {
		return
	}
	fmt.Fprintf(p.w, "\r\033[K[%d/%d done, %d failed, %d running] %s", p.done_, p.total, p.failed, len(p.steps), last)
}

func (p *progress) finish() {
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
