package install

import (
	"regexp"
	"strconv"
)

// describeRE matches what build.sh stamps: git describe --tags --always
// --dirty of a tagged tree ("v1.2.3", "v1.2.3-4-gabcdef0", "-dirty").
var describeRE = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)(?:-(\d+)-g[0-9a-f]+)?(-dirty)?$`)

// Order says how the node's version stands to the master's.
type Order int

// The orders.
const (
	Same      Order = iota // the same version: nothing to do
	Older                  // the node's is older (or it has none): an upgrade
	Newer                  // the node's is newer: a downgrade
	Unordered              // different, and the two cannot be ordered
)

func (o Order) String() string {
	return [...]string{"same", "older", "newer", "unordered"}[o]
}

// Compare orders the node's version against the master's. Tagged builds
// order by their numbers and then by the commits since the tag; builds
// of untagged commits (a bare commit id), dirty trees and "devel" order
// against nothing but themselves: replacing one may be a downgrade.
func Compare(node, master string) Order {
	if node == master {
		return Same
	}
	if node == "" {
		return Older
	}
	a, b := parse(node), parse(master)
	if a == nil || b == nil {
		return Unordered
	}
	for i := range a {
		switch {
		case a[i] < b[i]:
			return Older
		case a[i] > b[i]:
			return Newer
		}
	}
	return Unordered // same numbers, another commit or a dirty tree
}

func parse(v string) []int {
	m := describeRE.FindStringSubmatch(v)
	if m == nil {
		return nil
	}
	out := make([]int, 4)
	for i := range 4 {
		if m[i+1] == "" {
			continue
		}
		n, err := strconv.Atoi(m[i+1])
		if err != nil {
			return nil
		}
		out[i] = n
	}
	return out
}
