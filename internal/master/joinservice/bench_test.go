package joinservice

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/connlimit"
	"github.com/nodejoin/nodejoin/internal/joinapi"
)

// BenchmarkRegistrations: 1,000 simulated machines, each from its own
// loopback address, fetch their documents and report "joined" over TLS,
// 8 or 64 at a time, against the embedded store; the master records each node
// (cluster files fsynced) and pushes ssconf after the joins. One
// iteration is one such boot storm on a fresh master. Reported:
// registrations per minute, and the p50 and p99 of one registration
// (fetch + report, TLS handshake included).
//
//	go test -run '^$' -bench Registrations -benchtime 1x -count 3 ./internal/master/joinservice/
func BenchmarkRegistrations(b *testing.B) {
	for _, inFlight := range []int{8, 64} {
		b.Run(fmt.Sprintf("in-flight=%d", inFlight), func(b *testing.B) { benchRegistrations(b, inFlight) })
	}
}

func benchRegistrations(b *testing.B, inFlight int) {
	const nodes = 1000
	var lat []time.Duration
	var elapsed time.Duration
	for range b.N {
		b.StopTimer()
		// The production push delay (the tests' is 10 ms): a push to a
		// thousand nodes is the dearest thing the service does.
		f := newFixture(b, func(o *Options) { o.Limits, o.PushDelay = connlimit.Limits{Conns: 1024}, 0 })
		type slot struct{ uuid, secret string }
		slots := make([]slot, nodes)
		for i := range slots {
			a := f.add(b, AddRequest{NodeName: fmt.Sprintf("node%d.example.org", i)})
			slots[i] = slot{a.UUID, a.Secret}
		}
		ns := make([]*node, nodes)
		for i := range ns {
			ns[i] = f.node(b, fmt.Sprintf("127.2.%d.%d", i/250, i%250+1), f.pins)
		}
		one := make([]time.Duration, nodes)
		work := make(chan int)
		var wg sync.WaitGroup
		b.StartTimer()
		start := time.Now()
		for range inFlight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					t := time.Now()
					if code, body := ns[i].fetch(b, slots[i].uuid, slots[i].secret); code != http.StatusOK {
						b.Errorf("fetch %d: %d %s", i, code, body)
						continue
					}
					if code, body := ns[i].report(b, slots[i].uuid, slots[i].secret, joinapi.StatusJoined); code != http.StatusOK {
						b.Errorf("report %d: %d %s", i, code, body)
						continue
					}
					one[i] = time.Since(t)
				}
			}()
		}
		for i := range nodes {
			work <- i
		}
		close(work)
		wg.Wait()
		elapsed += time.Since(start)
		b.StopTimer()
		lat = append(lat, one...)
		f.svc.pusher.wait()
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(float64(len(lat))/elapsed.Minutes(), "registrations/min")
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}
