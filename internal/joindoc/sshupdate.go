package joindoc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/nodejoin/nodejoin/internal/jsondoc"
	"github.com/nodejoin/nodejoin/schemas"
)

// Actions of ssh-update's authorized_keys and public_keys instructions
// (Ganeti's SSHS_ACTIONS).
const (
	ActionAdd          = "add"
	ActionRemove       = "remove"
	ActionOverride     = "override"
	ActionClear        = "clear"
	ActionReplaceOrAdd = "replace_or_add"
)

// SSHUpdate is ssh-update's input (Ganeti 3.0's lib/tools/ssh_update.py
// _DATA_CHECK): instructions for the login user's authorized_keys and the
// cluster's public key file, and a new root key pair to generate.
type SSHUpdate struct {
	ClusterName           string        `json:"cluster_name"`
	NodeDaemonCertificate string        `json:"node_daemon_certificate,omitempty"`
	AuthorizedKeys        *KeyAction    `json:"authorized_keys,omitempty"`
	PublicKeys            *KeyAction    `json:"public_keys,omitempty"`
	Generate              *GenerateKeys `json:"generate,omitempty"`
	// SSHKeyType and SSHKeyBits are accepted, as by Ganeti's tool, and
	// not used: generate carries its own.
	SSHKeyType string `json:"ssh_key_type,omitempty"`
	SSHKeyBits int    `json:"ssh_key_bits,omitempty"`
}

// KeyAction is Ganeti's [action, {node uuid or name: [public key line, ...]}].
type KeyAction struct {
	Action string
	Keys   KeyMap
}

// MarshalJSON writes Ganeti's two-element array.
func (a KeyAction) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{a.Action, a.Keys})
}

// UnmarshalJSON reads the two-element array (the schema has checked it).
func (a *KeyAction) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if len(raw) != 2 {
		return fmt.Errorf("a key action is a list of 2 items, not %d", len(raw))
	}
	if err := json.Unmarshal(raw[0], &a.Action); err != nil {
		return err
	}
	return json.Unmarshal(raw[1], &a.Keys)
}

// KeyMap is a JSON object of key lists by node, in the document's order:
// Ganeti's tool writes the public key file in that order (a Python dict
// keeps it), so ours must too to leave the same file.
type KeyMap []NodeKeys

// NodeKeys is one member of a KeyMap.
type NodeKeys struct {
	Node string
	Keys []string
}

// MarshalJSON writes the object in order.
func (m KeyMap) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, nk := range m {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(nk.Node)
		if err != nil {
			return nil, err
		}
		keys := nk.Keys
		if keys == nil {
			keys = []string{}
		}
		v, err := json.Marshal(keys)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads the object keeping its members' order (jsondoc has
// refused duplicate names).
func (m *KeyMap) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("a key map is a JSON object")
	}
	*m = KeyMap{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := t.(string)
		var keys []string
		if err := dec.Decode(&keys); err != nil {
			return err
		}
		*m = append(*m, NodeKeys{Node: name, Keys: keys})
	}
	_, err := dec.Token()
	return err
}

// GenerateKeys is Ganeti's [key type, bits, suffix]: a new key pair for the
// login user as ~/.ssh/id_<type><suffix>{,.pub}.
type GenerateKeys struct {
	Type   string
	Bits   int
	Suffix string
}

// MarshalJSON writes Ganeti's three-element array.
func (g GenerateKeys) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{g.Type, g.Bits, g.Suffix})
}

// UnmarshalJSON reads the three-element array (the schema has checked it).
func (g *GenerateKeys) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if len(raw) != 3 {
		return fmt.Errorf("generate is a list of 3 items, not %d", len(raw))
	}
	if err := json.Unmarshal(raw[0], &g.Type); err != nil {
		return err
	}
	if err := json.Unmarshal(raw[1], &g.Bits); err != nil {
		return err
	}
	return json.Unmarshal(raw[2], &g.Suffix)
}

// DecodeSSHUpdate reads and checks an ssh-update document.
func DecodeSSHUpdate(r io.Reader) (*SSHUpdate, error) {
	var d SSHUpdate
	if err := jsondoc.Decode(r, schemas.Get(schemas.SSHUpdate), &d); err != nil {
		return nil, err
	}
	return &d, nil
}
