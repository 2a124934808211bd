// Package nodelist lists the cluster's nodes from the master's state
// (Ganeti's ssconf and key files, and the master's join records) and,
// when asked, checks each node's daemon over TLS, in parallel, each in
// bounded time. node-list prints what it returns.
package nodelist

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/noded"
	"github.com/nodejoin/nodejoin/internal/ssconf"
	"github.com/nodejoin/nodejoin/internal/sshkeys"
)

// Node is one node as the master knows it. It holds fingerprints, never keys.
type Node struct {
	Name      string `json:"node"`
	Role      string `json:"role"` // master, candidate or node
	PrimaryIP string `json:"primary_ip,omitempty"`
	// HostKey is the host key the node presents: the cluster's (every
	// node holds it once joined).
	HostKey string `json:"host_key,omitempty"`
	RootKey string `json:"root_key,omitempty"`
	// What the master recorded of the join, where it did (nodes joined
	// before it kept records have none).
	JoinedAt      *time.Time `json:"joined_at,omitempty"`
	Via           string     `json:"via,omitempty"`
	JoinedHostKey string     `json:"joined_host_key,omitempty"`
	// With Check: the node daemon's answers.
	Noded *Check `json:"noded,omitempty"`
}

// Check is what the node daemon answered, or why it did not.
type Check struct {
	OK       bool              `json:"ok"`
	Version  string            `json:"version,omitempty"`
	Status   string            `json:"status,omitempty"` // /health's: ok or degraded
	Checks   map[string]string `json:"checks,omitempty"`
	Error    string            `json:"error,omitempty"`
	Seconds  float64           `json:"seconds"`
	Endpoint string            `json:"endpoint"`
}

// List returns the recorded nodes in Ganeti's order (ssconf_node_list),
// only those of names when names are given (an unknown one is an error).
func List(c *cluster.Cluster, names []string) ([]Node, error) {
	values, err := c.ReadSsconf()
	if err != nil {
		return nil, err
	}
	all := ssconf.Lines(values["node_list"])
	ips := map[string]string{}
	for _, l := range ssconf.Lines(values["node_primary_ips"]) {
		if n, ip, ok := strings.Cut(l, " "); ok {
			ips[n] = ip
		}
	}
	candidates := map[string]bool{}
	for _, n := range ssconf.Lines(values["master_candidates"]) {
		candidates[n] = true
	}
	keys, err := c.PublicKeys()
	if err != nil {
		return nil, err
	}
	joins, err := c.Joins()
	if err != nil {
		return nil, err
	}
	hostKey := clusterHostKey(c)
	if len(names) > 0 {
		known := map[string]bool{}
		for _, n := range all {
			known[n] = true
		}
		for _, n := range names {
			if !known[n] {
				return nil, fmt.Errorf("%s: not a node of cluster %s (ssconf_node_list)", n, c.Settings.ClusterName)
			}
		}
		all = names
	}
	out := make([]Node, 0, len(all))
	for _, name := range all {
		n := Node{Name: name, Role: "node", PrimaryIP: ips[name], HostKey: hostKey}
		switch {
		case name == strings.TrimSpace(values["master_node"]):
			n.Role = "master"
		case candidates[name]:
			n.Role = "candidate"
		}
		if k, err := sshkeys.ParsePublicLine(keys[name]); err == nil {
			n.RootKey = sshkeys.Fingerprint(k)
		}
		if j, ok := joins[name]; ok {
			at := j.JoinedAt
			n.JoinedAt, n.Via, n.JoinedHostKey = &at, j.Via, j.HostKey
		}
		out = append(out, n)
	}
	return out, nil
}

// clusterHostKey is the fingerprint of the cluster's preferred host key
// (ed25519 where it has one): what ssh sees on every joined node.
func clusterHostKey(c *cluster.Cluster) string {
	pairs, err := cluster.ReadHostKeys(c.Config)
	if err != nil {
		return ""
	}
	fp := ""
	for _, p := range pairs {
		k, err := sshkeys.ParsePublicLine(p.Public)
		if err != nil {
			continue
		}
		if fp == "" || k.Type() == "ssh-ed25519" {
			fp = sshkeys.Fingerprint(k)
		}
	}
	return fp
}

// CheckAll asks every node's daemon but the master's for its version and
// health, at most parallel at a time, each within timeout, and fills in
// Noded. The master is skipped as node-add's ssconf push skips it: its
// files are the source, and a nodejoin master needs no node daemon.
func CheckAll(ctx context.Context, c *cluster.Cluster, nodes []Node, port, parallel int, timeout time.Duration) {
	client := c.NodedClient()
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	for i := range nodes {
		if nodes[i].Role == "master" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			nodes[i].Noded = check(ctx, c, client, nodes[i], port, timeout)
		}()
	}
	wg.Wait()
}

func check(ctx context.Context, c *cluster.Cluster, client *noded.Client, n Node, port int, timeout time.Duration) *Check {
	start := time.Now()
	host := n.PrimaryIP
	if host == "" {
		host = n.Name
	}
	r := &Check{Endpoint: fmt.Sprintf("%s:%d", host, port)}
	defer func() { r.Seconds = time.Since(start).Seconds() }()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := client.Version(ctx, host, port)
	if err != nil {
		r.Error = bounded(err, ctx, timeout)
		return r
	}
	r.Version = v.Version
	if v.ClusterName != c.Settings.ClusterName {
		r.Error = fmt.Sprintf("answers for cluster %q, not %q", v.ClusterName, c.Settings.ClusterName)
		return r
	}
	h, err := client.Health(ctx, host, port)
	if err != nil {
		r.Error = bounded(err, ctx, timeout)
		return r
	}
	r.Status, r.Checks = h.Status, h.Checks
	r.OK = h.Status == "ok"
	return r
}

// bounded names the timeout when it is what ended the check.
func bounded(err error, ctx context.Context, timeout time.Duration) string {
	if ctx.Err() != nil {
		return fmt.Sprintf("no answer within --timeout %s", timeout)
	}
	return err.Error()
}
