package joinservice

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/joindoc"
)

// A machine fetches its documents once with its secret, reports "joined",
// and the master records it as node-add does; the secret is then spent
// and another root key is refused.
func TestJoin(t *testing.T) {
	f := newFixture(t)
	cfg := "class { 'ntp': }\n"
	a := f.add(t, AddRequest{NodeName: "node1.example.org", Config: &cfg, Params: map[string]string{"rack": "r1"}})
	tok, err := joinapi.ParseToken(strings.TrimPrefix(a.BootParam, joinapi.BootParamKey+"="))
	if err != nil {
		t.Fatal(err)
	}
	if tok.UUID != a.UUID || tok.Secret != a.Secret || tok.Address() != f.addr || len(tok.Pins) != 1 || tok.Pins[0] != f.pins[0] {
		t.Fatalf("boot_param %q does not carry the slot, the address %s and the pin %s", a.BootParam, f.addr, f.pins[0])
	}

	n := f.node(t, "127.0.0.2", tok.Pins)
	code, body := n.fetch(t, a.UUID, a.Secret)
	if code != http.StatusOK {
		t.Fatalf("fetch: %d %s", code, body)
	}
	var docs joinapi.Documents
	if err := json.Unmarshal(body, &docs); err != nil {
		t.Fatal(err)
	}
	if docs.NodeName != "node1.example.org" || docs.PrimaryIP != "127.0.0.2" || string(docs.Config) != cfg ||
		docs.ConfigRevision != 1 || docs.Params["rack"] != "r1" {
		t.Errorf("documents: name %q ip %q config %q rev %d params %v", docs.NodeName, docs.PrimaryIP, docs.Config, docs.ConfigRevision, docs.Params)
	}
	// The documents are what the node-side programs take, schema and all.
	if _, err := joindoc.DecodePrepare(bytes.NewReader(docs.Prepare)); err != nil {
		t.Errorf("prepare-node-join document: %v", err)
	}
	setup, err := joindoc.DecodeDaemonSetup(bytes.NewReader(docs.DaemonSetup))
	if err != nil {
		t.Fatalf("node-daemon-setup document: %v", err)
	}
	if !strings.Contains(setup.Ssconf["node_list"], "node1.example.org") || setup.NodeName != "node1.example.org" {
		t.Errorf("node-daemon-setup document: node_list %q, node_name %q", setup.Ssconf["node_list"], setup.NodeName)
	}

	if code, body := n.fetch(t, a.UUID, a.Secret); code != http.StatusGone || errCode(t, body) != joinapi.CodeSpent {
		t.Errorf("second fetch: %d %s, want 410 spent", code, body)
	}
	if code, body := n.report(t, a.UUID, a.Secret, joinapi.StatusApplying); code != http.StatusOK {
		t.Fatalf("report applying: %d %s", code, body)
	}
	if keys := readFile(t, filepath.Join(f.root, "var/lib/ganeti/ganeti_pub_keys")); strings.Contains(keys, "node1") {
		t.Error("an applying report recorded the node")
	}
	code, body = n.report(t, a.UUID, a.Secret, joinapi.StatusJoined)
	var ans joinapi.StatusAnswer
	if code != http.StatusOK || json.Unmarshal(body, &ans) != nil || !ans.Recorded || ans.Peer != "127.0.0.2" {
		t.Fatalf("report joined: %d %s", code, body)
	}
	keyType, keyData, _ := strings.Cut(n.rootKey, " ")
	keyData, _, _ = strings.Cut(keyData, " ")
	if keys := readFile(t, filepath.Join(f.root, "var/lib/ganeti/ganeti_pub_keys")); !strings.Contains(keys, "node1.example.org "+keyType+" "+keyData) {
		t.Errorf("ganeti_pub_keys lacks the node's root key:\n%s", keys)
	}
	if nl := readFile(t, filepath.Join(f.root, "var/lib/ganeti/ssconf_node_list")); nl != "master.example.org\nnode1.example.org\n" {
		t.Errorf("ssconf_node_list = %q", nl)
	}
	if ips := readFile(t, filepath.Join(f.root, "var/lib/ganeti/ssconf_node_primary_ips")); !strings.Contains(ips, "node1.example.org 127.0.0.2\n") {
		t.Errorf("ssconf_node_primary_ips = %q", ips)
	}
	if kh := readFile(t, filepath.Join(f.root, "var/lib/ganeti/known_hosts")); !strings.HasPrefix(kh, "c1.example.org,node1.example.org ") {
		t.Errorf("known_hosts = %.60q", kh)
	}

	// Another key for the same slot is refused, and changes nothing.
	other := f.node(t, "127.0.0.3", tok.Pins)
	if code, body := other.report(t, a.UUID, a.Secret, joinapi.StatusJoined); code != http.StatusConflict || errCode(t, body) != joinapi.CodeKeyMismatch {
		t.Errorf("report with another key: %d %s, want 409 key_mismatch", code, body)
	}
	var v SlotView
	if err := f.admin.Do(context.Background(), http.MethodGet, "/admin/v1/slots/"+a.UUID, nil, nil, &v); err != nil {
		t.Fatal(err)
	}
	if v.State != "spent" || v.Report == nil || v.Report.Status != "joined" || v.Report.Peer != "127.0.0.2" ||
		v.Report.ClaimedAddr != "10.9.9.9" || v.PinnedKey != keyType+" "+keyData {
		t.Errorf("slot show: %+v report %+v", v, v.Report)
	}

	f.svc.pusher.wait()
	log := f.audit.String()
	if strings.Contains(log, a.Secret) {
		t.Fatal("the audit log holds the secret")
	}
	for _, want := range []string{
		`"event":"issue","slot":"` + a.UUID + `","peer":"admin","outcome":"ok","node":"node1.example.org"`,
		`"event":"fetch","slot":"` + a.UUID + `","peer":"127.0.0.2","outcome":"ok","node":"node1.example.org"`,
		`"event":"fetch","slot":"` + a.UUID + `","peer":"127.0.0.2","outcome":"refused","reason":"slot spent: no use left"`,
		`"event":"report","slot":"` + a.UUID + `","peer":"127.0.0.2","outcome":"ok","node":"node1.example.org","status":"joined"`,
		`"event":"record","slot":"` + a.UUID + `","peer":"127.0.0.2","outcome":"ok","node":"node1.example.org"`,
		`"event":"report","slot":"` + a.UUID + `","peer":"127.0.0.3","outcome":"refused","reason":"root key differs from the key pinned by the first report","node":"node1.example.org","status":"joined"`,
		`"event":"push","outcome":"failed","reason":"1 of 1 nodes did not take the update (see the service's log)","count":1`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %s\n%s", want, log)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		var e Event
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Time == "" {
			t.Errorf("audit line %q: %v", l, err)
		}
	}
}

// Unknown slot, wrong secret, no secret, an ill-formed uuid and a dynamic
// slot not assigned yet get one and the same answer; expired and spent
// are told apart, without anything about the slot.
func TestRefusals(t *testing.T) {
	f := newFixture(t)
	a := f.add(t, AddRequest{NodeName: "node1.example.org"})
	dyn := f.add(t, AddRequest{Dynamic: true})
	n := f.node(t, "127.0.0.2", f.pins)
	var first []byte
	for _, tc := range []struct{ name, uuid, secret string }{
		{"unknown slot", "0e5e1c2a-7a0b-4c7e-9d6f-1a2b3c4d5e6f", a.Secret},
		{"wrong secret", a.UUID, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"no secret", a.UUID, ""},
		{"not a uuid", "node1", a.Secret},
		{"dynamic slot not assigned", dyn.UUID, dyn.Secret},
	} {
		code, body := n.fetch(t, tc.uuid, tc.secret)
		if code != http.StatusUnauthorized {
			t.Errorf("%s: %d %s, want 401", tc.name, code, body)
		}
		if first == nil {
			first = body
		} else if !bytes.Equal(body, first) {
			t.Errorf("%s: answer %s differs from %s", tc.name, body, first)
		}
	}
	// None of them used the secret.
	if code, body := n.fetch(t, a.UUID, a.Secret); code != http.StatusOK {
		t.Fatalf("fetch after the refusals: %d %s", code, body)
	}

	exp := f.add(t, AddRequest{NodeName: "node2.example.org", TTL: "10m"})
	f.advance(11 * time.Minute)
	code, body := n.fetch(t, exp.UUID, exp.Secret)
	if code != http.StatusGone || errCode(t, body) != joinapi.CodeExpired {
		t.Errorf("expired: %d %s, want 410 expired", code, body)
	}
	if strings.Contains(string(body), "node2") || strings.Contains(string(body), exp.UUID) {
		t.Errorf("the expired answer names the slot: %s", body)
	}
	// An expired secret with a wrong guess is still just unauthorized.
	if code, _ := n.fetch(t, exp.UUID, "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"); code != http.StatusUnauthorized {
		t.Errorf("expired slot, wrong secret: %d, want 401", code)
	}

	fresh := f.add(t, AddRequest{NodeName: "node3.example.org"})
	for _, tc := range []struct {
		name       string
		uuid       string
		body       any
		wantStatus int
		wantCode   string
	}{
		{"report before a fetch", fresh.UUID, joinapi.StatusRequest{Status: "joined", RootKey: n.rootKey}, 409, joinapi.CodeNotFetched},
		{"unknown status", a.UUID, joinapi.StatusRequest{Status: "done", RootKey: n.rootKey}, 400, joinapi.CodeInvalid},
		{"no root key", a.UUID, joinapi.StatusRequest{Status: "applying"}, 400, joinapi.CodeInvalid},
		{"unknown key", a.UUID, map[string]string{"status": "applying", "root_key": n.rootKey, "colour": "red"}, 400, joinapi.CodeInvalid},
		{"oversized body", a.UUID, joinapi.StatusRequest{Status: "applying", RootKey: n.rootKey, Params: map[string]string{"x": strings.Repeat("x", joinapi.MaxRequestBody)}}, 413, joinapi.CodeTooLarge},
		{"name not the slot's", a.UUID, joinapi.StatusRequest{Status: "joined", RootKey: n.rootKey, NodeName: "node9.example.org"}, 400, joinapi.CodeInvalid},
	} {
		secret := a.Secret
		if tc.uuid == fresh.UUID {
			secret = fresh.Secret
		}
		code, body := n.call(t, http.MethodPost, "/v1/slots/"+tc.uuid+"/status", secret, tc.body)
		if code != tc.wantStatus || errCode(t, body) != tc.wantCode {
			t.Errorf("%s: %d %s, want %d %s", tc.name, code, body, tc.wantStatus, tc.wantCode)
		}
	}
	if strings.Contains(f.audit.String(), a.Secret) || strings.Contains(f.audit.String(), exp.Secret) {
		t.Error("the audit log holds a secret")
	}
}

// A client that does not pin this master's key refuses it before sending
// the secret.
func TestWrongPin(t *testing.T) {
	f := newFixture(t)
	a := f.add(t, AddRequest{NodeName: "node1.example.org"})
	n := f.node(t, "127.0.0.2", []string{"sha256:" + strings.Repeat("ab", 32)})
	req, _ := http.NewRequest(http.MethodGet, "https://"+f.addr+"/v1/slots/"+a.UUID, nil)
	req.Header.Set("Authorization", "Bearer "+a.Secret)
	_, err := n.http.Do(req)
	if err == nil || !strings.Contains(err.Error(), "the server's certificate matches no pin: it presents "+f.pins[0]) {
		t.Fatalf("err = %v", err)
	}
	// The secret was never sent: it still fetches.
	good := f.node(t, "127.0.0.2", append([]string{"sha256:" + strings.Repeat("ab", 32)}, f.pins...))
	if code, body := good.fetch(t, a.UUID, a.Secret); code != http.StatusOK {
		t.Fatalf("fetch with the right pin among two: %d %s", code, body)
	}
}

// 5 machines race for the 3 slots of a pool: 3 distinct slots, 2 clean
// refusals; each names itself, and a recorded name is refused.
func TestDynamic(t *testing.T) {
	f := newFixture(t)
	first := f.add(t, AddRequest{Dynamic: true})
	if !strings.HasPrefix(first.BootParam, joinapi.BootParamKey+"="+joinapi.DynamicUUID+":127.0.0.1:") {
		t.Errorf("a pool's boot_param %q does not start with the dynamic marker", first.BootParam)
	}
	for i := 0; i < 2; i++ {
		f.add(t, AddRequest{Dynamic: true, Secret: first.Secret})
	}
	var mu sync.Mutex
	got := map[string]string{}
	refused := 0
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := f.node(t, fmt.Sprintf("127.0.1.%d", i+1), f.pins)
			name := fmt.Sprintf("dyn%d.example.org", i)
			code, body := n.call(t, http.MethodPost, joinapi.PathAssign, first.Secret, joinapi.AssignRequest{NodeName: name})
			mu.Lock()
			defer mu.Unlock()
			switch code {
			case http.StatusOK:
				var d joinapi.Documents
				if err := json.Unmarshal(body, &d); err != nil || d.NodeName != name {
					t.Errorf("assign: %s", body)
				}
				if prev, dup := got[d.UUID]; dup {
					t.Errorf("slot %s handed to %s and %s", d.UUID, prev, name)
				}
				got[d.UUID] = name
				// It reports with the pool's secret under its slot.
				if code, body := n.call(t, http.MethodPost, "/v1/slots/"+d.UUID+"/status", first.Secret,
					joinapi.StatusRequest{Status: joinapi.StatusJoined, RootKey: n.rootKey, NodeName: name}); code != http.StatusOK {
					t.Errorf("report of %s: %d %s", name, code, body)
				}
			case http.StatusServiceUnavailable:
				if errCode(t, body) != joinapi.CodeNoFreeSlot {
					t.Errorf("refusal: %s", body)
				}
				refused++
			default:
				t.Errorf("assign: %d %s", code, body)
			}
		}()
	}
	wg.Wait()
	if len(got) != 3 || refused != 2 {
		t.Fatalf("%d slots handed out, %d refused; want 3 and 2", len(got), refused)
	}
	nl := readFile(t, filepath.Join(f.root, "var/lib/ganeti/ssconf_node_list"))
	for _, name := range got {
		if !strings.Contains(nl, name+"\n") {
			t.Errorf("%s not recorded: %q", name, nl)
		}
	}
	more := f.add(t, AddRequest{Dynamic: true, Secret: first.Secret})
	n := f.node(t, "127.0.1.9", f.pins)
	for _, name := range []string{"master.example.org", got[func() string {
		for u := range got {
			return u
		}
		return ""
	}()]} {
		code, body := n.call(t, http.MethodPost, joinapi.PathAssign, first.Secret, joinapi.AssignRequest{NodeName: name})
		if code != http.StatusConflict || errCode(t, body) != joinapi.CodeNameTaken {
			t.Errorf("assign as %s: %d %s, want 409 name_taken", name, code, body)
		}
	}
	if code, body := n.call(t, http.MethodPost, joinapi.PathAssign, "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC", joinapi.AssignRequest{NodeName: "x.example.org"}); code != http.StatusUnauthorized {
		t.Errorf("assign with a wrong pool secret: %d %s", code, body)
	}
	var v SlotView
	if err := f.admin.Do(context.Background(), http.MethodGet, "/admin/v1/slots/"+more.UUID, nil, nil, &v); err != nil || v.State != "free" {
		t.Errorf("the refused assignments took the free slot: %+v %v", v, err)
	}
}

// A nameless slot takes the machine's name at fetch, but never a recorded
// node's, and the refusal does not spend the secret.
func TestNamelessSlot(t *testing.T) {
	f := newFixture(t)
	a := f.add(t, AddRequest{})
	n := f.node(t, "127.0.0.2", f.pins)
	for _, q := range []string{"", "?node_name=master.example.org"} {
		if code, body := n.fetch(t, a.UUID+q, a.Secret); code != http.StatusUnauthorized {
			t.Errorf("fetch%s: %d %s, want 401", q, code, body)
		}
	}
	code, body := n.fetch(t, a.UUID+"?node_name=node7.example.org", a.Secret)
	if code != http.StatusOK {
		t.Fatalf("fetch: %d %s", code, body)
	}
	if code, body := n.report(t, a.UUID, a.Secret, joinapi.StatusJoined); code != http.StatusBadRequest {
		t.Errorf("report without the name: %d %s", code, body)
	}
	code, body = n.call(t, http.MethodPost, "/v1/slots/"+a.UUID+"/status", a.Secret,
		joinapi.StatusRequest{Status: joinapi.StatusJoined, RootKey: n.rootKey, NodeName: "master.example.org"})
	if code != http.StatusConflict || errCode(t, body) != joinapi.CodeNameTaken {
		t.Errorf("report as the master: %d %s", code, body)
	}
	code, body = n.call(t, http.MethodPost, "/v1/slots/"+a.UUID+"/status", a.Secret,
		joinapi.StatusRequest{Status: joinapi.StatusJoined, RootKey: n.rootKey, NodeName: "node7.example.org"})
	if code != http.StatusOK {
		t.Fatalf("report: %d %s", code, body)
	}
	if !strings.Contains(readFile(t, filepath.Join(f.root, "var/lib/ganeti/ganeti_pub_keys")), "node7.example.org ssh-ed25519 ") {
		t.Error("node7 not recorded")
	}
}

// node-join --follow: a long poll answers 304 when nothing changed within
// its wait, and the new config as soon as set-config replaces it.
func TestConfigPoll(t *testing.T) {
	f := newFixture(t)
	a := f.add(t, AddRequest{NodeName: "node1.example.org"})
	n := f.node(t, "127.0.0.2", f.pins)
	if code, _ := n.call(t, http.MethodGet, "/v1/slots/"+a.UUID+"/config?after=0", a.Secret, nil); code != http.StatusConflict {
		t.Errorf("poll before a fetch: %d, want 409", code)
	}
	if code, body := n.fetch(t, a.UUID, a.Secret); code != http.StatusOK {
		t.Fatalf("fetch: %d %s", code, body)
	}
	if code, body := n.call(t, http.MethodGet, "/v1/slots/"+a.UUID+"/config?after=1&wait=100ms", a.Secret, nil); code != http.StatusNotModified {
		t.Errorf("poll, nothing new: %d %s, want 304", code, body)
	}
	for _, q := range []string{"after=x", "after=-1", "wait=forever"} {
		if code, _ := n.call(t, http.MethodGet, "/v1/slots/"+a.UUID+"/config?"+q, a.Secret, nil); code != http.StatusBadRequest {
			t.Errorf("poll ?%s: %d, want 400", q, code)
		}
	}
	type result struct {
		code int
		body []byte
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		code, body := n.call(t, http.MethodGet, "/v1/slots/"+a.UUID+"/config?after=1&wait=20s", a.Secret, nil)
		done <- result{code, body}
	}()
	time.Sleep(200 * time.Millisecond)
	var set ConfigSet
	if err := f.admin.Do(context.Background(), http.MethodPut, "/admin/v1/slots/"+a.UUID+"/config", nil, []byte("v2\n"), &set); err != nil || set.ConfigRevision != 2 {
		t.Fatalf("set-config: %+v %v", set, err)
	}
	r := <-done
	var ca joinapi.ConfigAnswer
	if r.code != http.StatusOK || json.Unmarshal(r.body, &ca) != nil || string(ca.Config) != "v2\n" || ca.Revision != 2 {
		t.Fatalf("poll: %d %s", r.code, r.body)
	}
	if time.Since(start) > 15*time.Second {
		t.Error("the poll waited for its timeout, not for the change")
	}
	// A wrong secret cannot watch.
	if code, _ := n.call(t, http.MethodGet, "/v1/slots/"+a.UUID+"/config?after=2&wait=1s", "DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD", nil); code != http.StatusUnauthorized {
		t.Errorf("poll with a wrong secret: %d, want 401", code)
	}
}

// The admin API: list, show, remove, remove-stale, set-config and their
// refusals.
func TestAdmin(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.add(t, AddRequest{NodeName: "node1.example.org"})
	f.advance(time.Second)
	f.add(t, AddRequest{NodeName: "node2.example.org"})
	var l []SlotView
	if err := f.admin.Do(ctx, http.MethodGet, AdminSlots, nil, nil, &l); err != nil || len(l) != 2 || l[0].UUID != a.UUID || l[0].Config != nil {
		t.Fatalf("list: %+v %v", l, err)
	}
	body, _ := json.Marshal(l)
	if strings.Contains(string(body), a.Secret) || strings.Contains(string(body), "secret") {
		t.Errorf("list shows a secret: %s", body)
	}
	big := bytes.Repeat([]byte("x"), 1<<20+1)
	err := f.admin.Do(ctx, http.MethodPut, "/admin/v1/slots/"+a.UUID+"/config", nil, big, nil)
	var ae *AdminError
	if !asAdmin(err, &ae) || ae.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized config: %v", err)
	}
	err = f.admin.Do(ctx, http.MethodDelete, "/admin/v1/slots/0e5e1c2a-7a0b-4c7e-9d6f-1a2b3c4d5e6f", nil, nil, nil)
	if !asAdmin(err, &ae) || ae.Status != http.StatusNotFound {
		t.Errorf("remove unknown: %v", err)
	}
	dup, _ := json.Marshal(AddRequest{UUID: a.UUID})
	if err := f.admin.Do(ctx, http.MethodPost, AdminSlots, nil, dup, nil); !asAdmin(err, &ae) || ae.Status != http.StatusConflict {
		t.Errorf("add an existing uuid: %v", err)
	}
	if err := f.admin.Do(ctx, http.MethodDelete, "/admin/v1/slots/"+a.UUID, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	f.advance(3*time.Hour - time.Second)
	var rm RemovedAnswer
	if err := f.admin.Do(ctx, http.MethodPost, AdminRemoveStale, url.Values{"older_than": {"2h"}}, nil, &rm); err != nil || rm.Removed != 1 {
		t.Errorf("remove-stale: %+v %v", rm, err)
	}
	if err := f.admin.Do(ctx, http.MethodGet, AdminSlots, nil, nil, &l); err != nil || len(l) != 0 {
		t.Errorf("after remove-stale: %+v %v", l, err)
	}
	for _, want := range []string{`"event":"remove","slot":"` + a.UUID + `","peer":"admin","outcome":"ok"`,
		`"event":"remove-stale","peer":"admin","outcome":"ok","reason":"older than 2h0m0s","count":1`} {
		if !strings.Contains(f.audit.String(), want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
}

func asAdmin(err error, ae **AdminError) bool {
	e, ok := err.(*AdminError) //nolint:errorlint // Do returns it unwrapped
	*ae = e
	return ok
}

// The admin API answers only root and the daemon's own user, by the
// kernel's word for the socket's peer.
func TestAdminPeerIsRoot(t *testing.T) {
	h := peerIsRoot(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	for _, tc := range []struct {
		uid  any
		want int
	}{{0, http.StatusOK}, {os.Geteuid(), http.StatusOK}, {os.Geteuid() + 1000, http.StatusForbidden}, {-1, http.StatusForbidden}, {nil, http.StatusForbidden}} {
		r := httptest.NewRequest(http.MethodGet, AdminSlots, nil)
		if tc.uid != nil {
			r = r.WithContext(context.WithValue(r.Context(), peerKey{}, tc.uid))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("peer uid %v: %d, want %d", tc.uid, w.Code, tc.want)
		}
	}
}
