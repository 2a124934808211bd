package cluster

import (
	"strings"
	"testing"
)

func TestNiceSort(t *testing.T) {
	in := []string{"node10", "node2", "node1", "a", "node02x"}
	niceSort(in)
	if got := strings.Join(in, " "); got != "a node1 node2 node02x node10" {
		t.Errorf("niceSort = %s", got)
	}
}
