package sshupdate

import (
	"fmt"
	"strings"

	"github.com/nodejoin/nodejoin/internal/joindoc"
)

// pubKey is one line of the public key file: "<node> <key>".
type pubKey struct{ node, key string }

// parsePubKeys reads the public key file as Ganeti's _ParseKeyLine does:
// blank lines are skipped, the node is what comes before the first space
// and the key everything after it, trailing white space removed.
func parsePubKeys(np string, data []byte) ([]pubKey, error) {
	var out []pubKey
	for i, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		node, key, ok := strings.Cut(line, " ")
		if !ok {
			return nil, fmt.Errorf("%s: line %d: not \"<node> <key>\"", np, i+1)
		}
		out = append(out, pubKey{node, strings.TrimRightFunc(key, isSpace)})
	}
	return out, nil
}

func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == '\v' || r == '\f'
}

// renderPubKeys writes the lines as Ganeti does, each "<node> <key>\n".
func renderPubKeys(lines []pubKey) []byte {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.node + " " + l.key + "\n")
	}
	return []byte(b.String())
}

// needsOld says whether action a keeps any of the file's present lines.
func needsOld(action string) bool {
	return action != joindoc.ActionOverride && action != joindoc.ActionClear
}

// applyPubKeys is the file after action a, as Ganeti's UpdatePubKeyFile
// makes it: add appends each (node, key) not there yet; replace_or_add
// first drops every line of the node; remove drops every line of each
// node named, whatever its keys; override is exactly the document's keys in
// its order; clear leaves the file empty.
func applyPubKeys(old []pubKey, a *joindoc.KeyAction) []pubKey {
	switch a.Action {
	case joindoc.ActionClear:
		return nil
	case joindoc.ActionOverride:
		var out []pubKey
		for _, nk := range a.Keys {
			for _, k := range nk.Keys {
				out = append(out, pubKey{nk.Node, k})
			}
		}
		return out
	}
	lines := append([]pubKey(nil), old...)
	without := func(node string) []pubKey {
		var out []pubKey
		for _, l := range lines {
			if l.node != node {
				out = append(out, l)
			}
		}
		return out
	}
	for _, nk := range a.Keys {
		switch a.Action {
		case joindoc.ActionRemove:
			lines = without(nk.Node)
			continue
		case joindoc.ActionReplaceOrAdd:
			lines = without(nk.Node)
		}
		for _, k := range nk.Keys {
			found := false
			for _, l := range lines {
				if l.node == nk.Node && l.key == k {
					found = true
					break
				}
			}
			if !found {
				lines = append(lines, pubKey{nk.Node, k})
			}
		}
	}
	return lines
}
