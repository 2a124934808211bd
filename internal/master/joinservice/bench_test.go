package joinservice

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/connlimit"
	"github.com/nodejoin/nodejoin/internal/fixture/etcdtest"
	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/master/slotstore"
)

// BenchmarkRegistrations: 1,000 simulated machines, each from its own
// loopback address, fetch their documents and report "joined" over TLS,
// 8 or 64 at a time, against the embedded store and against three etcd
// members with client TLS on loopback; the master records each node
// (cluster files fsynced) and pushes ssconf after the joins. One
// iteration is one such boot storm on a fresh master (and a fresh etcd
// prefix). Reported: registrations per minute, and the p50 and p99 of one
// registration (fetch + report, TLS handshake included). `make bench`
// runs it through qa/bench -pull, which writes doc/benchmarks.md's
// pull-mode section.
//
//	go test -run '^$' -bench Registrations -benchtime 1x -count 3 ./internal/master/joinservice/
func BenchmarkRegistrations(b *testing.B) {
	parent := b
	for _, inFlight := range []int{8, 64} {
		b.Run(fmt.Sprintf("embedded/in-flight=%d", inFlight), func(b *testing.B) {
			benchRegistrations(b, inFlight, func(opts func(*Options)) *fixture { return newFixture(b, opts) })
		})
	}
	var etcd func(prefix string) slotstore.Config
	var prefixes atomic.Int64
	for _, inFlight := range []int{8, 64} {
		b.Run(fmt.Sprintf("etcd/in-flight=%d", inFlight), func(b *testing.B) {
			etcdtest.Bin(b) // skips here without etcd(1)
			if etcd == nil {
				etcd = startEtcd(parent) // once for both: the members live as long as the parent
			}
			benchRegistrations(b, inFlight, func(opts func(*Options)) *fixture {
				root := b.TempDir()
				initCluster(b, root)
				f := &fixture{root: root, now: time.Now(), store: openEtcd(b, etcd(fmt.Sprintf("/bench%d/", prefixes.Add(1))))}
				return f.serve(b, filepath.Join(root, "run/nodejoin/join-service.sock"), opts)
			})
		})
	}
}

func benchRegistrations(b *testing.B, inFlight int, master func(func(*Options)) *fixture) {
	const nodes = 1000
	var lat []time.Duration
	var elapsed time.Duration
	for range b.N {
		b.StopTimer()
		// The production push delay (the tests' is 10 ms): a push to a
		// thousand nodes is the dearest thing the service does.
		f := master(func(o *Options) { o.Limits, o.PushDelay = connlimit.Limits{Conns: 1024}, 0 })
		type slot struct{ uuid, secret string }
		slots := make([]slot, nodes)
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for i := next.Add(1) - 1; i < nodes; i = next.Add(1) - 1 {
					a := f.add(b, AddRequest{NodeName: fmt.Sprintf("node%d.example.org", i)})
					slots[i] = slot{a.UUID, a.Secret}
				}
			})
		}
		wg.Wait()
		ns := make([]*node, nodes)
		for i := range ns {
			ns[i] = f.node(b, fmt.Sprintf("127.2.%d.%d", i/250, i%250+1), f.pins)
		}
		one := make([]time.Duration, nodes)
		work := make(chan int)
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
