package cluster

import "sync"

// recordGroup writes the RecordNode calls of goroutines that share a
// Cluster in groups: the calls that arrive while one group is being
// written are written together next, each file once and one round of
// fsyncs for all, as a database commits a group of transactions. A
// node-add of 50 nodes whose joins end together so takes the master's
// lock a few times rather than 50 times in a queue. Every caller returns
// once its own node is on disk, with whether its own records changed.
type recordGroup struct {
	mu      sync.Mutex
	pending []pendingRecord
	running bool
	writing int // the size of the group being written (tests)
}

// groupWritten, if set, is told each group's size once it is written
// (tests).
var groupWritten func(size int)

type pendingRecord struct {
	n    Node
	done chan<- recordResult
}

type recordResult struct {
	changed bool
	err     error
}

func (g *recordGroup) record(c *Cluster, n Node) (bool, error) {
	done := make(chan recordResult, 1)
	g.mu.Lock()
	g.pending = append(g.pending, pendingRecord{n, done})
	if !g.running {
		g.running = true
		go g.write(c)
	}
	g.mu.Unlock()
	r := <-done
	return r.changed, r.err
}

// write writes the pending groups until none is left.
func (g *recordGroup) write(c *Cluster) {
	for {
		g.mu.Lock()
		group := g.pending
		g.pending, g.writing = nil, len(group)
		if len(group) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		ns := make([]Node, len(group))
		for i, p := range group {
			ns[i] = p.n
		}
		changed, err := c.recordNodes(ns)
		if groupWritten != nil {
			groupWritten(len(group))
		}
		for _, p := range group {
			p.done <- recordResult{changed[p.n.Name], err}
		}
	}
}
