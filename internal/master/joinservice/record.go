package joinservice

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/master/join"
)

// record records a joined node on the master as node-add does
// (cluster.RecordNode: the reports that arrive while one group is written
// are written together next). It returns once the node is on disk or ctx
// ends; the write goes on all the same, and the node's next report
// records it again if this one did not land.
func (s *Service) record(ctx context.Context, n cluster.Node) error {
	c, err := s.cluster()
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.RecordNode(n)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pusher sends the master's ssconf to every node after nodes joined, as
// Ganeti redistributes its config: one push at a time, PushDelay after
// the first join it follows, and the joins meanwhile and during a push
// make one more push, not one each.
type pusher struct {
	s      *Service
	mu     sync.Mutex
	wanted bool
	busy   bool
	idle   *sync.Cond
}

func newPusher(s *Service) *pusher {
	p := &pusher{s: s}
	p.idle = sync.NewCond(&p.mu)
	return p
}

// kick asks for a push soon.
func (p *pusher) kick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wanted = true
	if !p.busy {
		p.busy = true
		go p.run()
	}
}

// wait returns once no push is wanted or running (tests, shutdown).
func (p *pusher) wait() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.busy {
		p.idle.Wait()
	}
}

func (p *pusher) run() {
	for {
		p.mu.Lock()
		if !p.wanted {
			p.busy = false
			p.idle.Broadcast()
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		sleep(p.s.pushCtx, p.s.o.PushDelay)
		p.mu.Lock()
		p.wanted = false
		p.mu.Unlock()
		p.push()
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (p *pusher) push() {
	c, err := p.s.cluster()
	if err != nil {
		p.s.log.Error("pushing ssconf", "err", err)
		return
	}
	res, err := join.PushSsconf(p.s.pushCtx, join.Options{Cluster: c, NodeDaemonPort: c.Settings.NodeDaemonPort}, p.s.o.PushParallel)
	if err != nil {
		p.s.log.Error("pushing ssconf", "err", err)
		return
	}
	if p.s.pushCtx.Err() != nil {
		return // shutting down: the nodes get the next push, or node-add's
	}
	failed := 0
	for _, r := range res {
		if r.Error != "" {
			failed++
			p.s.log.Warn("pushing ssconf", "node", r.Node, "err", r.Error)
		}
	}
	n := len(res)
	ev := Event{Event: "push", Outcome: OutcomeOK, Count: &n}
	if failed > 0 {
		ev.Outcome, ev.Reason = OutcomeFailed, fmt.Sprintf("%d of %d nodes did not take the update (see the service's log)", failed, n)
	}
	p.s.audit.Log(ev)
}
