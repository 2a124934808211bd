// Package clustertest makes a master's cluster state for tests, the way
// cluster-init does. Tests only.
package clustertest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/master/clusterinit"
)

// New initialises a cluster under o.Root with clusterinit (its MasterNode
// and MasterIP should be given: the test host's own need not resolve) and
// opens it.
func New(t testing.TB, o clusterinit.InitOptions) *cluster.Cluster {
	t.Helper()
	p, err := clusterinit.PlanInit(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(context.Background(), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	c, err := cluster.Open(o.Root)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
