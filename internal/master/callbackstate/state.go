// Package callbackstate is the master's record of its machine callbacks
// (callback-grant(8)): which node holds which port of the callback range,
// with which key. callback-grant writes it; node-add and the ssconf push
// read it to reach a node through its tunnel. A leaf, so that its readers
// link none of callback-grant's writing.
package callbackstate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/nodejoin/nodejoin/internal/nodeconf"
)

// StateFile is the grants' record, in the master's state directory.
const StateFile = "callback.json"

// State is what callback-grant has added to the master.
type State struct {
	User string `json:"user"`
	// UserCreated: callback-grant made the account, so the last revoke
	// removes it; an account that was there is left alone.
	UserCreated bool `json:"user_created"`
	// NewlineAdded: sshd_config did not end in a newline, and one was
	// added before the marked block; the last revoke takes it away too.
	NewlineAdded bool `json:"newline_added,omitempty"`
	// Enabled: callback-grant --enable keeps the account and sshd's block
	// without a grant, for join-service's grants.
	Enabled bool     `json:"enabled,omitempty"`
	Grants  []Record `json:"grants"`
}

// Active says whether the master has the account's files: a grant, or
// callback-grant --enable.
func (s *State) Active() bool { return len(s.Grants) > 0 || s.Enabled }

// Record is one node's port and key.
type Record struct {
	Node      string `json:"node"`
	Port      int    `json:"port"`
	PublicKey string `json:"public_key"` // "type base64", no options or comment
	// Slot is the join-service slot whose secret asked for the grant
	// (join-service(8), "The machine callback"); empty for callback-grant's own.
	Slot string `json:"slot,omitempty"`
}

// Path is the record's node path (under the state directory).
func Path(cfg *nodeconf.Config) string { return filepath.Join(cfg.StateDir, StateFile) }

// Read reads the record; a master without one has no grants.
func Read(cfg *nodeconf.Config) (*State, error) {
	b, err := os.ReadFile(cfg.Path(Path(cfg)))
	if errors.Is(err, fs.ErrNotExist) {
		return &State{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", Path(cfg), err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s State
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %w", Path(cfg), err)
	}
	return &s, nil
}

// Lookup returns the node's grant, or nil.
func (s *State) Lookup(node string) *Record {
	for i := range s.Grants {
		if s.Grants[i].Node == node {
			return &s.Grants[i]
		}
	}
	return nil
}

// Ports maps each granted node to its port.
func (s *State) Ports() map[string]int {
	m := make(map[string]int, len(s.Grants))
	for _, g := range s.Grants {
		m[g.Node] = g.Port
	}
	return m
}

// Bytes is the record as written: grants sorted by node, indented JSON.
func (s *State) Bytes() []byte {
	sort.Slice(s.Grants, func(i, j int) bool { return s.Grants[i].Node < s.Grants[j].Node })
	b, _ := json.MarshalIndent(s, "", "  ")
	return append(b, '\n')
}
