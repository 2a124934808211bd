package slotstore

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkFetchReport measures registrations, a fetch and a report of one
// single-use slot each, on the embedded store and on three etcd members on
// loopback: one caller at a time, then 16 at once. The floor under
// join-service's own benchmark.
func BenchmarkFetchReport(b *testing.B) {
	b.Run("embedded", func(b *testing.B) {
		benchBackends(b, func(b *testing.B) Backend {
			bb, err := OpenBolt(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { bb.Close() })
			return bb
		})
	})
	b.Run("etcd", func(b *testing.B) {
		c := startEtcd(b)
		var n atomic.Int64
		benchBackends(b, func(b *testing.B) Backend {
			e, err := c.open(b.Context(), fmt.Sprintf("/bench%d/", n.Add(1)))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { e.Close() })
			return e
		})
	})
}

func benchBackends(b *testing.B, open func(*testing.B) Backend) {
	for _, callers := range []int{1, 16} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			s := New(open(b), Options{})
			ctx := b.Context()
			key := rootKey(b, "root@node")
			// The slots are added before the clock starts, 16 at a time.
			slots := make([]Added, b.N)
			var next atomic.Int64
			var wg sync.WaitGroup
			for range 16 {
				wg.Go(func() {
					for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
						a, err := s.Add(ctx, NewSlot{Config: []byte("#!/bin/sh\ntrue\n")})
						if err != nil {
							b.Error(err)
							return
						}
						slots[i] = a
					}
				})
			}
			wg.Wait()
			next.Store(0)
			b.ResetTimer()
			for range callers {
				wg.Go(func() {
					for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
						a := slots[i]
						if _, err := s.Fetch(ctx, a.Slot.UUID, a.Secret); err != nil {
							b.Error(err)
							return
						}
						if _, err := s.Report(ctx, a.Slot.UUID, a.Secret, Report{Status: "joined", Peer: "127.0.0.1:1", RootKey: key}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "registrations/s")
		})
	}
}
