package main

import (
	"fmt"

	"github.com/nodejoin/nodejoin/internal/master/callbackstate"
	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/problem"
)

// callbackTunnels are the callback tunnels of the master's record: node-add
// reaches every granted node through its own, for the join and for the
// ssconf push. With --via-callback each NODE must have one; a node
// without is refused before any connection.
func callbackTunnels(c *cluster.Cluster, nodes []string, via bool) (map[string]int, error) {
	st, err := callbackstate.Read(c.Config)
	if err != nil {
		return nil, err
	}
	ports := st.Ports()
	if via {
		for _, n := range nodes {
			if ports[n] == 0 {
				return nil, problem.Reject("--via-callback", "node %s has no callback grant in %s", n, callbackstate.Path(c.Config)).
					WithHint(fmt.Sprintf("grant it a port on this master (callback-grant(8)), set the tunnel up on the node (callback-setup(8)), then run node-add again; without --via-callback node-add connects to %s directly", n))
			}
		}
	}
	return ports, nil
}
