package joinservice

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/nodejoin/nodejoin/internal/joinapi"
)

// callKey is call with a fetch key in its header.
func (n *node) callKey(t *testing.T, method, path, secret, key string, body any) (int, []byte) {
	t.Helper()
	return n.callHeader(t, method, path, secret, http.Header{joinapi.FetchKeyHeader: {key}}, body)
}

func (f *fixture) show(t *testing.T, uuid string) SlotView {
	t.Helper()
	var v SlotView
	if err := f.admin.Do(context.Background(), http.MethodGet, AdminSlots+"/"+uuid, nil, nil, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// A fetch whose answer was lost (the node got no answer, the master had
// consumed the use) is answered again to the run that sent it, known by
// its fetch key; anyone else holding the secret is refused as spent.
func TestFetchAnsweredAgainToItsKey(t *testing.T) {
	f := newFixture(t)
	a := f.add(t, AddRequest{NodeName: "node1.example.org"})
	n := f.node(t, "127.0.0.2", f.pins)
	key, other := joinapi.NewFetchKey(), joinapi.NewFetchKey()
	path := "/v1/slots/" + a.UUID
	if code, body := n.callKey(t, http.MethodGet, path, a.Secret, key, nil); code != http.StatusOK {
		t.Fatalf("fetch: %d %s", code, body)
	}
	// The answer above is taken as lost: the run asks again.
	code, body := n.callKey(t, http.MethodGet, path, a.Secret, key, nil)
	var d joinapi.Documents
	if code != http.StatusOK || json.Unmarshal(body, &d) != nil || d.UUID != a.UUID || len(d.Prepare) == 0 {
		t.Fatalf("the run's second attempt: %d %.200s, want its documents again", code, body)
	}
	for what, k := range map[string]string{"another run's key": other, "no key": ""} {
		var code int
		var body []byte
		if k == "" {
			code, body = n.fetch(t, a.UUID, a.Secret)
		} else {
			code, body = n.callKey(t, http.MethodGet, path, a.Secret, k, nil)
		}
		if code != http.StatusGone || errCode(t, body) != joinapi.CodeSpent {
			t.Errorf("a fetch with %s: %d %s, want 410 spent", what, code, body)
		}
	}
	if code, _ := n.callKey(t, http.MethodGet, path, strings.Repeat("A", 43), key, nil); code != http.StatusUnauthorized {
		t.Errorf("the run's key with a wrong secret: %d, want 401", code)
	}
	if v := f.show(t, a.UUID); v.Used != 1 {
		t.Errorf("used %d, want 1", v.Used)
	}
	if !strings.Contains(f.audit.String(), againReason) {
		t.Errorf("the audit log does not say a fetch was answered again:\n%s", f.audit.String())
	}

	// A dynamic pool: the run's retry gets the slot it was given.
	pool := f.add(t, AddRequest{Dynamic: true})
	f.add(t, AddRequest{Dynamic: true, Secret: pool.Secret})
	assign := func(ip, key string) (int, joinapi.Documents) {
		code, body := f.node(t, ip, f.pins).callKey(t, http.MethodPost, joinapi.PathAssign, pool.Secret, key, joinapi.AssignRequest{NodeName: "dyn1.example.org"})
		var d joinapi.Documents
		if code == http.StatusOK {
			if err := json.Unmarshal(body, &d); err != nil {
				t.Fatal(err)
			}
		}
		return code, d
	}
	_, first := assign("127.0.0.3", key)
	if code, again := assign("127.0.0.3", key); code != http.StatusOK || again.UUID != first.UUID {
		t.Fatalf("the run's second assignment: %d %s, want %s", code, again.UUID, first.UUID)
	}
	if code, d := assign("127.0.0.4", other); code != http.StatusOK || d.UUID == first.UUID {
		t.Fatalf("another run: %d %s", code, d.UUID)
	}
	if code, _ := assign("127.0.0.5", joinapi.NewFetchKey()); code != http.StatusServiceUnavailable {
		t.Fatalf("a third run for a pool of two: %d, want 503", code)
	}
}

// "joined" spends a slot with uses left: its secret admits no fetch after
// the join (a boot parameter is readable by every local user).
func TestJoinedSpendsACountedSlot(t *testing.T) {
	f := newFixture(t)
	a := f.add(t, AddRequest{NodeName: "node1.example.org", Uses: 2})
	n := f.node(t, "127.0.0.2", f.pins)
	if code, body := n.fetch(t, a.UUID, a.Secret); code != http.StatusOK {
		t.Fatalf("fetch: %d %s", code, body)
	}
	if v := f.show(t, a.UUID); v.State != "assigned" {
		t.Fatalf("after the fetch: %s", v.State)
	}
	if code, body := n.report(t, a.UUID, a.Secret, joinapi.StatusJoined); code != http.StatusOK {
		t.Fatalf("report: %d %s", code, body)
	}
	if v := f.show(t, a.UUID); v.State != "spent" || v.Used != 1 {
		t.Errorf("after joined: state %s used %d, want spent 1", v.State, v.Used)
	}
	if code, body := f.node(t, "127.0.0.3", f.pins).fetch(t, a.UUID, a.Secret); code != http.StatusGone || errCode(t, body) != joinapi.CodeSpent {
		t.Errorf("a fetch after the join: %d %s, want 410 spent", code, body)
	}
	f.svc.pusher.wait()
}

// A node that refuses its documents before it has a root key reports its
// failure without one; the reason is kept, nothing is pinned, and any
// other status still needs the key.
func TestFailedReportWithoutKey(t *testing.T) {
	f := newFixture(t)
	a := f.add(t, AddRequest{NodeName: "node1.example.org"})
	n := f.node(t, "127.0.0.2", f.pins)
	if code, body := n.fetch(t, a.UUID, a.Secret); code != http.StatusOK {
		t.Fatalf("fetch: %d %s", code, body)
	}
	path := "/v1/slots/" + a.UUID + "/status"
	if code, body := n.call(t, http.MethodPost, path, a.Secret, joinapi.StatusRequest{Status: joinapi.StatusApplying}); code != http.StatusBadRequest {
		t.Errorf("applying without a key: %d %s, want 400", code, body)
	}
	code, body := n.call(t, http.MethodPost, path, a.Secret, joinapi.StatusRequest{Status: joinapi.StatusFailed,
		Params: map[string]string{"error": "invalid input: /cluster_name: not this cluster"}})
	if code != http.StatusOK {
		t.Fatalf("failed without a key: %d %s, want 200", code, body)
	}
	v := f.show(t, a.UUID)
	if v.Report == nil || v.Report.Status != joinapi.StatusFailed || v.Report.Params["error"] != "invalid input: /cluster_name: not this cluster" || v.PinnedKey != "" {
		t.Errorf("slot show: %+v report %+v", v, v.Report)
	}
}
