package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/nodejoin/nodejoin/internal/sshkeys"
	"github.com/nodejoin/nodejoin/internal/txn"
)

// JoinsFile is the node path, under the state directory, of how and
// when each node joined: Ganeti's files record that a node is a member,
// not when it became one nor how (node-list shows it).
const JoinsFile = "nodes.json"

// The ways a node joins (Node.Via).
const (
	ViaPush     = "push"     // node-add over SSH
	ViaPull     = "pull"     // node-join fetched its documents from join-service
	ViaCallback = "callback" // node-add through the node's reverse tunnel
)

// Join is what the master recorded of one node's join.
type Join struct {
	JoinedAt time.Time `json:"joined_at"`
	Via      string    `json:"via,omitempty"`
	// HostKey is the fingerprint of the host key the master verified the
	// node by when it joined (its own, before it took the cluster's).
	HostKey string `json:"host_key,omitempty"`
	RootKey string `json:"root_key,omitempty"` // fingerprint of its root key
}

type joinsDoc struct {
	Nodes map[string]Join `json:"nodes"`
}

func (c *Cluster) joinsPath() string {
	return c.Config.Path(filepath.Join(c.Config.StateDir, JoinsFile))
}

// Joins reads the join records; nodes recorded before they were kept
// have none.
func (c *Cluster) Joins() (map[string]Join, error) {
	b, err := os.ReadFile(c.joinsPath())
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]Join{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the join records: %w", err)
	}
	var d joinsDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", c.joinsPath(), err)
	}
	if d.Nodes == nil {
		d.Nodes = map[string]Join{}
	}
	return d.Nodes, nil
}

// noteJoins records the join of each of ns that the master has no record
// of, or that joined again with another root key (a reinstalled node);
// a node joined again as it was keeps its first record. It returns the
// new join records' file to write, nil when nothing changes. The caller
// holds the master's lock.
func (c *Cluster) noteJoins(ns []Node, now time.Time) (*txn.File, error) {
	joins, err := c.Joins()
	if err != nil {
		return nil, err
	}
	changed := false
	for _, n := range ns {
		root := ""
		if pub, err := sshkeys.ParsePublicLine(n.RootPublicKey); err == nil {
			root = sshkeys.Fingerprint(pub)
		}
		if j, ok := joins[n.Name]; ok && (j.RootKey == root || root == "") {
			continue
		}
		joins[n.Name] = Join{JoinedAt: now.UTC(), Via: n.Via, HostKey: n.HostKey, RootKey: root}
		changed = true
	}
	if !changed {
		return nil, nil
	}
	b, err := json.MarshalIndent(joinsDoc{Nodes: joins}, "", "  ")
	if err != nil {
		return nil, err
	}
	return &txn.File{Path: c.joinsPath(), Data: append(b, '\n'), Mode: ModePublic}, nil
}
