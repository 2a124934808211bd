package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/ssconf"
	"github.com/nodejoin/nodejoin/internal/txn"
)

// Node is a joined node as the master records it.
type Node struct {
	Name          string
	PrimaryIP     string
	RootPublicKey string // the node's root public key line
	Via           string // how it joined: ViaPush, ViaPull, ViaCallback (joins.go)
	HostKey       string // fingerprint of the host key it was verified by, if any
}

// PublicKeys reads ganeti_pub_keys: node name (or UUID) to key line.
func (c *Cluster) PublicKeys() (map[string]string, error) {
	b, err := os.ReadFile(c.Path(nodeconf.PubKeys))
	if err != nil {
		return nil, fmt.Errorf("reading the public key list: %w", err)
	}
	out := map[string]string{}
	for _, l := range ssconf.Lines(string(b)) {
		if name, key, ok := strings.Cut(l, " "); ok {
			out[name] = key
		}
	}
	return out, nil
}

// Recorded says whether the master has recorded name as a node (its
// ssconf node_list names it).
func (c *Cluster) Recorded(name string) (bool, error) {
	values, err := c.ReadSsconf()
	if err != nil {
		return false, err
	}
	return contains(ssconf.Lines(values["node_list"]), name), nil
}

// lock serialises the master's read-modify-write updates across
// processes (flock on a file in the lock directory).
func (c *Cluster) lock() (func(), error) {
	f, err := txn.Lock(context.Background(), nil, c.Config.Path(filepath.Join(c.Config.LockDir, masterLock)))
	if err != nil {
		return nil, err
	}
	return func() { f.Close() }, nil
}

// Locked runs f under the master's lock, the one RecordNode's
// read-modify-write of the cluster files holds: whatever else rewrites
// those files (cluster-renew's switch of the master's line in
// ganeti_pub_keys) must hold it too, or a node recorded meanwhile writes
// back what it read before the change.
func (c *Cluster) Locked(f func() error) error {
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return f()
}

// RecordNode records a joined node on the master: its root key in
// ganeti_pub_keys, its name in node_list and online_nodes, its address in
// node_primary_ips, and its name beside the cluster alias in known_hosts
// (the node now presents the cluster host key). Each file is replaced
// atomically under the master's lock; recording a node twice changes
// nothing. It reports whether it changed any of the node's records.
// Calls from goroutines that share c are written in groups (group.go).
func (c *Cluster) RecordNode(n Node) (changed bool, err error) {
	if err := CheckName(n.Name); err != nil {
		return false, err
	}
	return c.group.record(c, n)
}

// RecordNodes records several joined nodes as RecordNode does, writing
// each file once for all of them. It reports whether it changed any file.
func (c *Cluster) RecordNodes(ns ...Node) (changed bool, err error) {
	for _, n := range ns {
		if err := CheckName(n.Name); err != nil {
			return false, err
		}
	}
	ch, err := c.recordNodes(ns)
	return len(ch) > 0, err
}

// recordNodes writes the records of ns, every file that changes in one
// round of fsyncs, and returns the names whose records changed.
func (c *Cluster) recordNodes(ns []Node) (changed map[string]bool, err error) {
	changed = map[string]bool{}
	unlock, err := c.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Every file that changes is written in one round of fsyncs at the
	// end (txn.WriteFiles), each replaced atomically on its own.
	var writes []txn.File
	write := func(p string, old, data []byte, mode os.FileMode) {
		if string(old) != string(data) {
			writes = append(writes, txn.File{Path: p, Data: data, Mode: mode})
		}
	}

	// ganeti_pub_keys: "<name> <key>", one line per node.
	b, err := os.ReadFile(c.Path(nodeconf.PubKeys))
	if err != nil {
		return nil, fmt.Errorf("reading the public key list: %w", err)
	}
	keys, anyKey := ssconf.Lines(string(b)), false
	for _, n := range ns {
		if n.RootPublicKey == "" {
			continue
		}
		anyKey = true
		entry := n.Name + " " + strings.TrimSpace(n.RootPublicKey)
		var out []string
		found := false
		for _, l := range keys {
			if name, _, _ := strings.Cut(l, " "); name == n.Name {
				if found {
					continue
				}
				if l != entry {
					changed[n.Name] = true
				}
				l, found = entry, true
			}
			out = append(out, l)
		}
		if !found {
			out = append(out, entry)
			changed[n.Name] = true
		}
		keys = out
	}
	if anyKey {
		write(c.Path(nodeconf.PubKeys), b, []byte(strings.Join(keys, "\n")+"\n"), ModeSecret)
	}

	values, err := c.ReadSsconf()
	if err != nil {
		return nil, err
	}
	nodeKeys := []string{"node_list", "online_nodes", "node_primary_ips"}
	before := map[string]string{}
	for _, k := range append(nodeKeys, ssconf.CandidateCertsKey) {
		before[k] = values[k]
	}
	for _, n := range ns {
		was := make([]string, len(nodeKeys))
		for i, k := range nodeKeys {
			was[i] = values[k]
		}
		withNode(values, n.Name, n.PrimaryIP)
		for i, k := range nodeKeys {
			if values[k] != was[i] {
				changed[n.Name] = true
			}
		}
	}
	if err := c.withMasterCert(values); err != nil {
		return nil, err
	}
	if values[ssconf.CandidateCertsKey] != before[ssconf.CandidateCertsKey] {
		for _, n := range ns { // the master's own entry: a change of each join's record
			changed[n.Name] = true
		}
	}
	for k, old := range before {
		if values[k] != old {
			writes = append(writes, txn.File{Path: c.Config.Path(ssconf.Path(c.Config.DataDir, k)),
				Data: ssconf.Format(values[k]), Mode: ssconf.FileMode})
		}
	}

	// known_hosts: "<cluster>,<node>,... type key".
	b, err = os.ReadFile(c.Path(nodeconf.KnownHosts))
	if err != nil {
		return nil, fmt.Errorf("reading the cluster known_hosts: %w", err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && !strings.HasPrefix(f[0], "@") && !strings.HasPrefix(f[0], "#") {
			hosts := strings.Split(f[0], ",")
			if grown := withNames(hosts, ns); contains(hosts, c.Settings.ClusterName) && len(grown) > len(hosts) {
				for _, name := range grown[len(hosts):] {
					changed[name] = true
				}
				f[0] = strings.Join(grown, ",")
				l = strings.Join(f, " ")
			}
		}
		out = append(out, l)
	}
	write(c.Path(nodeconf.KnownHosts), b, []byte(strings.Join(out, "\n")+"\n"), ModePublic)
	// How and when: node-list's, not Ganeti's, so not in changed; in the
	// same round of fsyncs.
	joins, err := c.noteJoins(ns, time.Now())
	if err != nil {
		return nil, err
	}
	if joins != nil {
		writes = append(writes, *joins)
	}
	if len(writes) > 0 {
		if err := txn.WriteFiles(writes); err != nil {
			return changed, err
		}
	}
	return changed, nil
}

// withNames is hosts with the names of ns it lacks appended, in order.
func withNames(hosts []string, ns []Node) []string {
	out := hosts
	for _, n := range ns {
		if !contains(out, n.Name) {
			out = append(out[:len(out):len(out)], n.Name)
		}
	}
	return out
}
