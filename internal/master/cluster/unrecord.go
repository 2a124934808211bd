package cluster

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/ssconf"
	"github.com/nodejoin/nodejoin/internal/txn"
)

// UnrecordNode takes name out of what RecordNode wrote: its line in
// ganeti_pub_keys, its entries in node_list, online_nodes and
// node_primary_ips, its name beside the cluster alias in known_hosts, and
// its join record (nodes.json);
// each file replaced atomically under the master's lock, and written only
// if it changes, so that the master's files are as they were before the
// node joined. It reports whether it changed any file.
func (c *Cluster) UnrecordNode(name string) (changed bool, err error) {
	unlock, err := c.lock()
	if err != nil {
		return false, err
	}
	defer unlock()
	write := func(p string, old, data []byte, mode os.FileMode) error {
		if string(old) == string(data) {
			return nil
		}
		changed = true
		return txn.WriteFile(p, data, mode)
	}

	b, err := os.ReadFile(c.Path(nodeconf.PubKeys))
	if err != nil {
		return false, fmt.Errorf("reading the public key list: %w", err)
	}
	var keys []string
	for _, l := range ssconf.Lines(string(b)) {
		if n, _, _ := strings.Cut(l, " "); n != name {
			keys = append(keys, l)
		}
	}
	data := []byte(strings.Join(keys, "\n") + "\n")
	if len(keys) == 0 {
		data = nil
	}
	if err := write(c.Path(nodeconf.PubKeys), b, data, ModeSecret); err != nil {
		return changed, err
	}

	values, err := c.ReadSsconf()
	if err != nil {
		return changed, err
	}
	for _, k := range []string{"node_list", "online_nodes", "node_primary_ips"} {
		lines := ssconf.Lines(values[k])
		kept := slices.DeleteFunc(slices.Clone(lines), func(l string) bool {
			n, _, _ := strings.Cut(l, " ")
			return n == name
		})
		if len(kept) == len(lines) {
			continue
		}
		changed = true
		if err := txn.WriteFile(c.Config.Path(ssconf.Path(c.Config.DataDir, k)), ssconf.Format(strings.Join(kept, "\n")), ssconf.FileMode); err != nil {
			return changed, err
		}
	}

	b, err = os.ReadFile(c.Path(nodeconf.KnownHosts))
	if err != nil {
		return changed, fmt.Errorf("reading the cluster known_hosts: %w", err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && !strings.HasPrefix(f[0], "@") && !strings.HasPrefix(f[0], "#") {
			hosts := strings.Split(f[0], ",")
			if contains(hosts, c.Settings.ClusterName) && contains(hosts, name) && name != c.Settings.ClusterName {
				f[0] = strings.Join(slices.DeleteFunc(hosts, func(h string) bool { return h == name }), ",")
				l = strings.Join(f, " ")
			}
		}
		out = append(out, l)
	}
	if err := write(c.Path(nodeconf.KnownHosts), b, []byte(strings.Join(out, "\n")+"\n"), ModePublic); err != nil {
		return changed, err
	}
	forgot, err := c.forgetJoin(name)
	return changed || forgot, err
}

// forgetJoin takes name's entry out of the join records (noteJoins); the
// file goes with the last entry, as it came with the first.
func (c *Cluster) forgetJoin(name string) (bool, error) {
	joins, err := c.Joins()
	if err != nil {
		return false, err
	}
	if _, ok := joins[name]; !ok {
		return false, nil
	}
	delete(joins, name)
	if len(joins) == 0 {
		if err := os.Remove(c.joinsPath()); err != nil {
			return false, fmt.Errorf("removing the join records: %w", err)
		}
		return true, nil
	}
	b, err := json.MarshalIndent(joinsDoc{Nodes: joins}, "", "  ")
	if err != nil {
		return false, err
	}
	return true, txn.WriteFile(c.joinsPath(), append(b, '\n'), ModePublic)
}
