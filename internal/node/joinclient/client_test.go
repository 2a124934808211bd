package joinclient

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/problem"
)

const (
	testUUID   = "5b0e8a52-35f1-4c8e-a1d2-6f6e2b7d9c01"
	testSecret = "q8Yb2mFz0K1sV4xR7tN9wE3uI6oP5aL2dC8gH1jB0nM"
)

// server answers each request with the next of answers (status, code),
// the last one for good, and counts the requests.
func server(t *testing.T, answers ...[2]any) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if r.Header.Get("Authorization") != "Bearer "+testSecret {
			t.Errorf("request %d without the secret in its header", i)
		}
		a := answers[min(i, len(answers)-1)]
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a[0].(int))
		if a[0].(int) == http.StatusOK {
			_, _ = w.Write([]byte(`{"uuid":"` + testUUID + `","node_name":"node1","new_key":1}`))
			return
		}
		_, _ = w.Write([]byte(`{"error":"` + a[1].(string) + `","message":"m"}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func client(t *testing.T, srv *httptest.Server, pins ...string) *Client {
	t.Helper()
	host, port, err := splitServer(strings.TrimPrefix(srv.URL, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	if pins == nil {
		pins = []string{joinapi.Pin(srv.Certificate())}
	}
	c := New(joinapi.Token{UUID: testUUID, Host: host, Port: port, Secret: testSecret, Pins: pins}, slog.New(slog.DiscardHandler))
	c.MinBackoff, c.MaxBackoff = time.Millisecond, 4*time.Millisecond
	return c
}

// A 5xx is retried until it passes; a refusal is final at once, whatever
// follows it; a pool without a free slot is final too.
func TestFetchRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answers  [][2]any
		requests int32
		code     int
		want     string
	}{
		{"unavailable then ok", [][2]any{{503, joinapi.CodeUnavailable}, {500, joinapi.CodeInternal}, {200, ""}}, 3, 0, ""},
		{"unauthorized", [][2]any{{401, joinapi.CodeUnauthorized}, {200, ""}}, 1, 3,
			"invalid input: fetching slot " + testUUID + ": the master refused: 401 unauthorized: m"},
		{"spent", [][2]any{{410, joinapi.CodeSpent}}, 1, 3,
			"invalid input: fetching slot " + testUUID + ": the master refused: 410 spent: m"},
		{"forbidden", [][2]any{{403, "forbidden"}}, 1, 3,
			"invalid input: fetching slot " + testUUID + ": the master refused: 403 forbidden: m"},
		{"no free slot", [][2]any{{503, joinapi.CodeNoFreeSlot}}, 1, 3,
			"invalid input: fetching slot " + testUUID + ": the master refused: 503 no_free_slot: m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, n := server(t, tc.answers...)
			docs, err := client(t, srv).Fetch(context.Background(), "node1")
			if got := n.Load(); got != tc.requests {
				t.Errorf("%d requests, want %d", got, tc.requests)
			}
			if tc.want == "" {
				if err != nil || docs.UUID != testUUID {
					t.Fatalf("Fetch: %+v, %v", docs, err)
				}
				return
			}
			if err == nil || err.Error() != tc.want || problem.ExitCode(err) != tc.code {
				t.Fatalf("Fetch: %v (exit %d), want %q (exit %d)", err, problem.ExitCode(err), tc.want, tc.code)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Error("the error names the secret")
			}
		})
	}
}

// A transient failure that outlasts the timeout is a failure (exit 1).
func TestFetchTimeout(t *testing.T) {
	srv, n := server(t, [2]any{503, joinapi.CodeUnavailable})
	// The waits double from 1 ms with no cap to speak of, so a wait soon
	// outgrows what is left of the deadline, however slow the machine:
	// the client gives up before the deadline cuts a request short.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c := client(t, srv)
	c.MaxBackoff = time.Minute
	_, err := c.Fetch(ctx, "node1")
	if err == nil || problem.ExitCode(err) != 1 || !strings.Contains(err.Error(), "giving up after") || n.Load() < 2 {
		t.Fatalf("Fetch: %v after %d requests", err, n.Load())
	}
}

// A server whose key matches no pin gets no request at all; a second pin
// that matches is enough (a rotation overlaps).
func TestPinRefusedBeforeAnything(t *testing.T) {
	srv, n := server(t, [2]any{200, ""})
	other := "sha256:" + strings.Repeat("ab", 32)
	_, err := client(t, srv, other).Fetch(context.Background(), "node1")
	if err == nil || !strings.Contains(err.Error(), ": the server's certificate matches no pin: it presents "+joinapi.Pin(srv.Certificate())+"; nothing was sent to it") || problem.ExitCode(err) != 3 {
		t.Fatalf("Fetch with another pin: %v", err)
	}
	if n.Load() != 0 {
		t.Errorf("the server got %d requests", n.Load())
	}
	if _, err := client(t, srv, other, joinapi.Pin(srv.Certificate())).Fetch(context.Background(), "node1"); err != nil {
		t.Errorf("two pins, the second the server's: %v", err)
	}
}
