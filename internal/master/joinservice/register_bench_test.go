package joinservice

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/advert"
	"github.com/nodejoin/nodejoin/internal/connlimit"
	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/master/registrar"
	"github.com/nodejoin/nodejoin/internal/master/slotstore"
)

// BenchmarkAdvertToRegistered: N machines appear at once. Each one's
// advert reaches the registrar (as the avahi browser hands it over, after
// the resolve), then the machine, from its own loopback address over TLS,
// sends its registration request, long-polls until its slot is issued,
// fetches its documents with its request secret and reports joined. The
// figure is the wall time from the first advert to the last record
// registered, on the embedded store, in anything mode with an install
// window, the registrar running as serve runs it. One iteration is one
// such batch on a fresh master.
//
//	go test -run '^$' -bench AdvertToRegistered -benchtime 1x -count 5 ./internal/master/joinservice/
func BenchmarkAdvertToRegistered(b *testing.B) {
	for _, n := range []int{1, 10, 50} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) { benchAdvertToRegistered(b, n) })
	}
}

func benchAdvertToRegistered(b *testing.B, hosts int) {
	var total time.Duration
	for range b.N {
		b.StopTimer()
		var g *registrar.Registrar
		f := newFixture(b, func(o *Options) { o.Limits = connlimit.Limits{Conns: 1024} }, withRegistrar(&g, registrar.Anything))
		ctx, cancel := context.WithCancel(context.Background())
		var run sync.WaitGroup
		run.Go(func() { g.Run(ctx) })
		if _, err := g.OpenWindow(ctx, time.Hour); err != nil {
			b.Fatal(err)
		}
		ms := make([]*machine, hosts)
		for i := range ms {
			ms[i] = f.machine(b, fmt.Sprintf("127.3.%d.%d", i/250, i%250+1), fmt.Sprintf("node%d.example.org", i))
		}
		var wg sync.WaitGroup
		b.StartTimer()
		start := time.Now()
		for _, m := range ms {
			wg.Go(func() {
				fp := fingerprint(m)
				if _, err := g.Observe(ctx, registrar.Sighting{Source: registrar.SourceMDNS, Addr: m.addr, Interface: "eth0",
					Advert: advert.Advert{Role: "node", Cluster: "c1.example.org", Name: m.name, HostKey: fp, State: advert.Ready}}); err != nil {
					b.Error(err)
					return
				}
				if code, body := m.request(b, true); code != http.StatusAccepted {
					b.Errorf("register %s: %d %s", m.name, code, body)
					return
				}
				var a joinapi.RegisterAnswer
				for a.Slot == "" {
					code, body := m.call(b, http.MethodGet, "/v1/register/"+m.name+"?wait=30s", m.secret, nil)
					if code != http.StatusOK || jsonInto(body, &a) != nil {
						b.Errorf("poll %s: %d %s", m.name, code, body)
						return
					}
				}
				if code, body := m.fetch(b, a.Slot, m.secret); code != http.StatusOK {
					b.Errorf("fetch %s: %d %s", m.name, code, body)
					return
				}
				if code, body := m.report(b, a.Slot, m.secret, joinapi.StatusJoined); code != http.StatusOK {
					b.Errorf("report %s: %d %s", m.name, code, body)
				}
			})
		}
		wg.Wait()
		for _, m := range ms {
			for {
				r, err := g.Get(ctx, m.name)
				if err != nil {
					b.Fatal(err)
				}
				if r.State == registrar.Registered {
					break
				}
				wctx, wcancel := context.WithTimeout(ctx, time.Second)
				if err := g.Watch(wctx, m.name); err != nil && !errors.Is(err, context.DeadlineExceeded) {
					b.Fatal(err)
				}
				wcancel()
			}
		}
		total += time.Since(start)
		b.StopTimer()
		cancel()
		run.Wait()
		f.svc.pusher.wait()
		if n := len(slotsOf(b, f.store)); n != hosts {
			b.Fatalf("%d slots for %d hosts", n, hosts)
		}
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/batch")
	b.ReportMetric(0, "ns/op")
}

func slotsOf(b *testing.B, s *slotstore.Store) []slotstore.Slot {
	l, err := s.List(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return slices.Clip(l)
}
