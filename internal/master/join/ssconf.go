package join

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/ssconf"
)

// PushResult is what an ssconf push did on one node.
type PushResult struct {
	Node    string  `json:"node"`
	Changed bool    `json:"changed"`
	Error   string  `json:"error,omitempty"`
	Seconds float64 `json:"seconds"` // the request, TLS handshake included
}

// PushSsconf sends the master's ssconf to the node daemon of every node in
// its node list but the master, at most parallel at a time, as Ganeti's
// master redistributes ssconf after a node is added: nodes joined in
// parallel, and those joined before, then list every node. It uses the
// node daemons (TLS, the master's client certificate), not SSH.
func PushSsconf(ctx context.Context, o Options, parallel int) ([]PushResult, error) {
	values, err := o.Cluster.Ssconf()
	if err != nil {
		return nil, err
	}
	update := &joindoc.SsconfUpdate{ClusterName: o.Cluster.Settings.ClusterName, Ssconf: values}
	addrs := map[string]string{}
	for _, l := range ssconf.Lines(values["node_primary_ips"]) {
		if name, ip, ok := strings.Cut(l, " "); ok {
			addrs[name] = ip
		}
	}
	var nodes []string
	for _, n := range ssconf.Lines(values["node_list"]) {
		if n != values["master_node"] {
			nodes = append(nodes, n)
		}
	}
	sort.Strings(nodes)
	client := o.Cluster.NodedClient()
	out := make([]PushResult, len(nodes))
	Each(len(nodes), parallel, func(i int) {
		n := nodes[i]
		addr := addrs[n]
		if addr == "" {
			addr = n
		}
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		out[i].Node = n
		t := time.Now()
		var res *joindoc.Result
		var err error
		if port := o.Tunnels[n]; port != 0 {
			res, err = putSsconfThroughTunnel(pctx, o, n, port, update)
		} else {
			res, err = client.PutSsconf(pctx, addr, o.NodeDaemonPort, update)
		}
		out[i].Seconds = time.Since(t).Seconds()
		if err != nil {
			out[i].Error = fmt.Sprintf("updating ssconf through the node daemon: %v", err)
			return
		}
		out[i].Changed = res.Changed
	})
	return out, nil
}
