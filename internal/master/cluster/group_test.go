package cluster_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/ssconf"
	"github.com/nodejoin/nodejoin/internal/txn"
)

// RecordNode calls that arrive while a group is being written wait and
// are written together next, each answered with whether its own node's
// records changed: with the master's lock held elsewhere, the first group
// waits for it and every later call joins the second.
func TestRecordNodeGroups(t *testing.T) {
	_, c := initCluster(t)
	var mu sync.Mutex
	var sizes []int
	cluster.OnGroupWritten(func(n int) { mu.Lock(); sizes = append(sizes, n); mu.Unlock() })
	t.Cleanup(func() { cluster.OnGroupWritten(nil) })
	lock, err := txn.Lock(context.Background(), nil, c.Config.Path(filepath.Join(c.Config.LockDir, "nodejoin-master.lock")))
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	node := func(i int) cluster.Node {
		return cluster.Node{Name: fmt.Sprintf("node%d.example.org", i), PrimaryIP: fmt.Sprintf("192.0.2.%d", 10+i), Via: cluster.ViaPush}
	}
	type answer struct {
		i       int
		changed bool
		err     error
	}
	answers := make(chan answer, n)
	for i := range n {
		go func() {
			changed, err := c.RecordNode(node(i))
			answers <- answer{i, changed, err}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	writing, pending := c.Queued()
	for writing+pending < n {
		if time.Now().After(deadline) {
			lock.Close()
			t.Fatalf("%d calls in the group writing and %d waiting, want %d in all", writing, pending, n)
		}
		time.Sleep(time.Millisecond)
		writing, pending = c.Queued()
	}
	lock.Close()
	for range n {
		if a := <-answers; a.err != nil || !a.changed {
			t.Errorf("node%d: changed %v, %v; want true, nil", a.i, a.changed, a.err)
		}
	}
	want := []int{writing}
	if pending > 0 {
		want = append(want, pending)
	}
	mu.Lock()
	if !slices.Equal(sizes, want) {
		t.Errorf("groups written: %v, want %v", sizes, want)
	}
	mu.Unlock()
	values, err := c.ReadSsconf()
	if err != nil {
		t.Fatal(err)
	}
	list := ssconf.Lines(values["node_list"])
	for i := range n {
		if !slices.Contains(list, node(i).Name) {
			t.Errorf("node_list %q lacks %s", list, node(i).Name)
		}
	}

	// Recorded again as it was, beside a new node: only the new one changed.
	again := node(3)
	again.Via = cluster.ViaPull // how it joined again: a join record's, not a change
	changed, err := c.RecordNodesEach(again, node(n))
	if err != nil || len(changed) != 1 || !changed[node(n).Name] {
		t.Errorf("recorded again beside a new node: changed %v, %v; want only %s", changed, err, node(n).Name)
	}
}
