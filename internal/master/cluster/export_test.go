package cluster

import "github.com/nodejoin/nodejoin/internal/nodeconf"

// Queued is the size of the group being written and how many RecordNode
// calls wait for the next.
func (c *Cluster) Queued() (writing, pending int) {
	c.group.mu.Lock()
	defer c.group.mu.Unlock()
	return c.group.writing, len(c.group.pending)
}

// OnGroupWritten has f told each group's size once it is written.
func OnGroupWritten(f func(size int)) { groupWritten = f }

// RecordNodesEach is recordNodes: the names whose records changed.
func (c *Cluster) RecordNodesEach(ns ...Node) (map[string]bool, error) { return c.recordNodes(ns) }

// HostKeysMatch is readHostKeys' verdict: whether every pair matches.
func HostKeysMatch(cfg *nodeconf.Config) (bool, error) {
	_, matched, err := readHostKeys(cfg)
	return matched, err
}
