package main

import (
	"testing"

	"github.com/nodejoin/nodejoin/internal/fixture"
)

// BenchmarkFreshRun is a whole run on a fresh node, on the typical
// document: go test -run '^$' -bench FreshRun -benchtime 60x (see
// fixture.BenchFreshRuns for NODEJOIN_BENCH_AGAINST).
func BenchmarkFreshRun(b *testing.B) {
	c, err := fixture.NewCluster("cluster.nodejoin.test")
	if err != nil {
		b.Fatal(err)
	}
	fixture.BenchFreshRuns(b, "../prepare-node-join", fixture.JSON(c.Prepare()))
}
