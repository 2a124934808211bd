package cleanup

import (
	"context"
	"log/slog"
	"testing"

	"github.com/nodejoin/nodejoin/internal/apply"
	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/node/daemonsetup"
	"github.com/nodejoin/nodejoin/internal/node/prepare"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
)

// BenchmarkCleanup is one node-cleanup of a freshly joined node (the join
// itself is not timed): read the record, plan, write back and remove in
// one transaction, every write fsynced.
func BenchmarkCleanup(b *testing.B) {
	c, err := fixture.NewCluster("c1.example.org")
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		cfg, err := nodeconf.Load(fixture.NewRoot(b))
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range []apply.Planner{prepare.Planner(cfg, c.Prepare()), daemonsetup.Planner(cfg, c.DaemonSetup("node1.c1.example.org"))} {
			if _, err := apply.Run(ctx, cfg, log, p, false); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		res, err := apply.Run(ctx, cfg, log, Planner(cfg, cleanupDoc()), false)
		if err != nil || !res.Changed {
			b.Fatal(res, err)
		}
	}
}
