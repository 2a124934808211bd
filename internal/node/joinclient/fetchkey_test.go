package joinclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/nodejoin/nodejoin/internal/joinapi"
)

// Every attempt of one run's fetch carries the same fetch key, a report
// none, and another run another key: the master answers a retried fetch
// again only to the run whose fetch consumed the use.
func TestFetchKeyOnEveryAttempt(t *testing.T) {
	var mu sync.Mutex
	var keys []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Method+" "+r.Header.Get(joinapi.FetchKeyHeader))
		n := len(keys)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // the first attempt's answer lost, say
			_, _ = w.Write([]byte(`{"error":"unavailable","message":"m"}`))
			return
		}
		_, _ = w.Write([]byte(`{"uuid":"` + testUUID + `","node_name":"node1"}`))
	}))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	c := client(t, srv)
	if _, err := c.Fetch(ctx, "node1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Report(ctx, joinapi.StatusRequest{Status: joinapi.StatusApplying, RootKey: "ssh-ed25519 AAAA"}); err != nil {
		t.Fatal(err)
	}
	if _, err := client(t, srv).Fetch(ctx, "node1"); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 4 {
		t.Fatalf("requests: %q", keys)
	}
	first, _ := strings.CutPrefix(keys[0], "GET ")
	if len(first) < 22 || keys[1] != keys[0] || keys[2] != "POST " || keys[3] == keys[0] || len(keys[3]) != len(keys[0]) {
		t.Errorf("fetch keys of (fetch, its retry, a report, another run's fetch): %q", keys)
	}
}
