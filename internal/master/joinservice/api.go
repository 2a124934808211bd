package joinservice

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/master/join"
	"github.com/nodejoin/nodejoin/internal/master/slotstore"
)

// APIHandler serves the nodes' API (internal/joinapi) behind TLS.
func (s *Service) APIHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+joinapi.PathSlot, s.fetch)
	mux.HandleFunc("POST "+joinapi.PathStatus, s.report)
	mux.HandleFunc("GET "+joinapi.PathConfig, s.pollConfig)
	mux.HandleFunc("POST "+joinapi.PathAssign, s.assign)
	mux.HandleFunc("POST "+joinapi.PathCallback, s.callbackGrant) // callback.go
	mux.HandleFunc("GET "+joinapi.PathFile, s.serveFile)          // files.go
	s.registerRoutes(mux)                                         // register.go
	return mux
}

// peer is the address the request came from, as the server sees it.
func peer(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// bearer is the secret of the Authorization header.
func bearer(r *http.Request) (string, bool) {
	v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return strings.TrimSpace(v), ok && strings.TrimSpace(v) != ""
}

// slotID is the {uuid} of the path in its canonical form; an ill-formed
// one is answered as an unknown slot.
func slotID(r *http.Request) (string, error) {
	u, err := slotstore.CheckUUID(r.PathValue("uuid"))
	if err != nil {
		return "", unauthorized("the path's uuid is not a UUID")
	}
	return u, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// refuse answers err and writes the audit line.
func (s *Service) refuse(w http.ResponseWriter, r *http.Request, ev Event, err error) {
	ae := storeError(err)
	ev.Peer, ev.Reason = peer(r), ae.reason
	ev.Outcome = OutcomeRefused
	if ae.status >= 500 {
		ev.Outcome = OutcomeFailed
		s.log.Warn("request failed", "event", ev.Event, "slot", ev.Slot, "peer", ev.Peer, "err", ae.reason)
	}
	s.audit.Log(ev)
	if ae.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="join-service"`)
	}
	if ae.code == joinapi.CodeNoFreeSlot || ae.code == joinapi.CodeUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	writeJSON(w, ae.status, joinapi.Error{Code: ae.code, Message: ae.message})
}

// decodeBody reads one JSON object of at most limit bytes: unknown keys
// and trailing data are refused.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &apiError{http.StatusRequestEntityTooLarge, joinapi.CodeTooLarge,
			fmt.Sprintf("request body: more than %d bytes", limit), "request body too large"}
	}
	if err != nil {
		return invalid("request body: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid("request body: %v", err)
	}
	if dec.More() {
		return invalid("request body: data after the JSON object")
	}
	return nil
}

// nameTaken is the refusal of a name that is the master's or a recorded
// node's: a conflict, where other bad names are invalid.
type nameTaken struct{ msg string }

func (e nameTaken) Error() string { return e.msg }

// nodeName is the name the documents are built for: the slot's, else the
// name the machine asks for, which must not be a recorded node's (a
// nameless slot cannot take over another node's entry).
func nodeName(c *cluster.Cluster, slot slotstore.Slot, asked string) (string, error) {
	if slot.NodeName != "" {
		return slot.NodeName, nil
	}
	if asked == "" {
		return "", errors.New("node_name: the slot has no name and the request gives none")
	}
	if err := cluster.CheckName(asked); err != nil {
		return "", fmt.Errorf("node_name: %w", err)
	}
	if asked == c.Settings.MasterNode {
		return "", nameTaken{fmt.Sprintf("node_name: %q is the master", asked)}
	}
	if ok, err := c.Recorded(asked); err != nil || ok {
		if err != nil {
			return "", err
		}
		return "", nameTaken{fmt.Sprintf("node_name: %q is a recorded node", asked)}
	}
	return asked, nil
}

// primaryIP is the address the master records for the node: the slot's
// "primary_ip" parameter (set by the administrator), else the peer's.
func primaryIP(slot slotstore.Slot, peerIP string) string {
	if ip := slot.Params["primary_ip"]; ip != "" {
		return ip
	}
	return peerIP
}

// documents builds the answer to a fetch or an assignment from the
// master's state now.
func (s *Service) documents(c *cluster.Cluster, slot slotstore.Slot, name, peerIP string) (*joinapi.Documents, error) {
	ip := primaryIP(slot, peerIP)
	prep, setup, err := join.Documents(c, name, ip, 0)
	if err != nil {
		return nil, fmt.Errorf("building the documents: %w", err)
	}
	pj, err := json.Marshal(prep)
	if err != nil {
		return nil, err
	}
	sj, err := json.Marshal(setup)
	if err != nil {
		return nil, err
	}
	return &joinapi.Documents{UUID: slot.UUID, NodeName: name, PrimaryIP: ip, Prepare: pj, DaemonSetup: sj,
		Config: slot.Config, ConfigRevision: slot.ConfigRevision, Params: slot.Params, Expires: slot.Expires}, nil
}

// slotCredentials is a slot request's uuid (also put in ev) and the
// secret of its Authorization header.
func slotCredentials(r *http.Request, ev *Event) (uuid, secret string, err error) {
	if uuid, err = slotID(r); err != nil {
		return "", "", err
	}
	ev.Slot = uuid
	secret, ok := bearer(r)
	if !ok {
		return "", "", unauthorized("no secret in the Authorization header")
	}
	return uuid, secret, nil
}

// fetch: GET /v1/slots/{uuid} with the secret consumes one use and
// answers both documents and the config.
func (s *Service) fetch(w http.ResponseWriter, r *http.Request) {
	ev := Event{Event: "fetch"}
	uuid, secret, err := slotCredentials(r, &ev)
	if err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	c, err := s.cluster()
	if err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	// The name is settled before the use is consumed: a nameless slot
	// needs the machine's name, and a refusal then must not spend the
	// secret. It is answered as unknown: the caller's secret is not
	// checked yet.
	slot, err := s.store.Get(r.Context(), uuid)
	if err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	name, err := nodeName(c, slot, r.URL.Query().Get("node_name"))
	if err != nil {
		s.refuse(w, r, ev, unauthorized(err.Error()))
		return
	}
	slot, ev.Reason, err = s.fetchSlot(r, uuid, secret)
	if err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	ev.Node = name
	s.answerDocuments(w, r, ev, c, slot)
}

// assign: POST /v1/dynamic with the pool's secret takes the first free
// dynamic slot and answers its documents.
func (s *Service) assign(w http.ResponseWriter, r *http.Request) {
	ev := Event{Event: "assign"}
	secret, ok := bearer(r)
	if !ok {
		s.refuse(w, r, ev, unauthorized("no secret in the Authorization header"))
		return
	}
	var req joinapi.AssignRequest
	if err := decodeBody(w, r, joinapi.MaxRequestBody, &req); err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	c, err := s.cluster()
	if err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	// A dynamic slot has no name: the machine's is checked before a slot
	// is taken. Node names are no secret (ssconf_node_list on every node).
	name, err := nodeName(c, slotstore.Slot{}, req.NodeName)
	if err != nil {
		code, status := joinapi.CodeInvalid, http.StatusBadRequest
		if errors.As(err, new(nameTaken)) {
			code, status = joinapi.CodeNameTaken, http.StatusConflict
		}
		s.refuse(w, r, ev, &apiError{status, code, err.Error(), err.Error()})
		return
	}
	slot, note, err := s.assignSlot(r, secret)
	ev.Reason = note
	if err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	ev.Slot, ev.Node = slot.UUID, name
	s.answerDocuments(w, r, ev, c, slot)
}

// answerDocuments answers a fetch or an assignment of slot to the node
// ev.Node with its documents, and audits it.
func (s *Service) answerDocuments(w http.ResponseWriter, r *http.Request, ev Event, c *cluster.Cluster, slot slotstore.Slot) {
	docs, err := s.documents(c, slot, ev.Node, peer(r))
	if err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	ev.Peer, ev.Outcome = peer(r), OutcomeOK
	s.audit.Log(ev)
	writeJSON(w, http.StatusOK, docs)
}

// report: POST /v1/slots/{uuid}/status records the node's report; after
// "joined", the master records the node and pushes ssconf.
func (s *Service) report(w http.ResponseWriter, r *http.Request) {
	ev := Event{Event: "report"}
	uuid, secret, err := slotCredentials(r, &ev)
	if err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	var req joinapi.StatusRequest
	if err := decodeBody(w, r, joinapi.MaxRequestBody, &req); err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	ev.Status = req.Status
	if !slices.Contains(joinapi.Statuses, req.Status) {
		s.refuse(w, r, ev, invalid("status: %q is not one of %s", clip(req.Status), strings.Join(joinapi.Statuses, ", ")))
		return
	}
	slot, err := s.store.Check(r.Context(), uuid, secret)
	if err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	c, err := s.cluster()
	if err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	name, err := s.claimedName(c, slot, req.NodeName, req.RootKey,
		"node_name: the slot has no name: the report must give the name the documents were fetched with")
	if err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	ev.Node = name
	p := peer(r)
	// A node refused its documents before it had a root key: its failure
	// is taken without one. "joined" spends the slot.
	slot, err = s.store.Report(r.Context(), uuid, secret, slotstore.Report{Status: req.Status, Params: req.Params,
		Peer: p, ClaimedAddr: req.ClaimedAddr, RootKey: req.RootKey,
		Keyless: req.Status == joinapi.StatusFailed, Final: req.Status == joinapi.StatusJoined})
	if err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	ev.Peer, ev.Outcome = p, OutcomeOK
	s.audit.Log(ev)
	ans := joinapi.StatusAnswer{UUID: uuid, Status: req.Status, Peer: p}
	if req.CheckReach {
		ok := reachable(r.Context(), primaryIP(slot, p), s.sshPort())
		ans.Reachable = &ok
	}
	if req.Status == joinapi.StatusJoined {
		n := cluster.Node{Name: name, PrimaryIP: primaryIP(slot, p), RootPublicKey: slot.PinnedKey, Via: cluster.ViaPull}
		rev := Event{Event: "record", Slot: uuid, Peer: p, Node: name, Outcome: OutcomeOK}
		if err := s.record(r.Context(), n); err != nil {
			rev.Outcome, rev.Reason = OutcomeFailed, err.Error()
			s.audit.Log(rev)
			s.log.Error("recording a joined node", "node", name, "slot", uuid, "err", err)
			writeJSON(w, http.StatusInternalServerError, joinapi.Error{Code: joinapi.CodeInternal,
				Message: "the report was kept but the master could not record the node; report again"})
			return
		}
		s.audit.Log(rev)
		ans.Recorded = true
		s.pusher.kick()
		s.kickRegistrar()
	}
	writeJSON(w, http.StatusOK, ans)
}

// claimedName is the name a report or a callback request is for: the
// slot's, which the request may repeat but not change, else the name the
// request gives, checked and not another node's (nameFree with key, the
// node's root key): a nameless slot takes over no recorded node's entry.
// none refuses a request that gives no name to a nameless slot; "" leaves
// that to the name check.
func (s *Service) claimedName(c *cluster.Cluster, slot slotstore.Slot, given, key, none string) (string, error) {
	switch name := slot.NodeName; {
	case name != "" && given != "" && given != name:
		return "", invalid("node_name: %q is not the slot's %q", clip(given), name)
	case name != "":
		return name, nil
	case given == "" && none != "":
		return "", invalid("%s", none)
	}
	if err := cluster.CheckName(given); err != nil {
		return "", invalid("node_name: %v", err)
	}
	if err := s.nameFree(c, given, key); err != nil {
		return "", err
	}
	return given, nil
}

// nameFree refuses a name that the master records with another root key
// than key.
func (s *Service) nameFree(c *cluster.Cluster, name, key string) error {
	taken := name == c.Settings.MasterNode
	if !taken {
		keys, err := c.PublicKeys()
		if err != nil {
			return err
		}
		if k, ok := keys[name]; ok && !sameKey(k, key) {
			taken = true
		}
	}
	if taken {
		m := fmt.Sprintf("node_name: %q is a recorded node with another root key", name)
		return &apiError{http.StatusConflict, joinapi.CodeNameTaken, m, m}
	}
	return nil
}

// sameKey compares two authorized_keys lines by type and key, not comment.
func sameKey(a, b string) bool {
	fa, fb := strings.Fields(a), strings.Fields(b)
	return len(fa) >= 2 && len(fb) >= 2 && fa[0] == fb[0] && fa[1] == fb[1]
}

// pollConfig: GET /v1/slots/{uuid}/config?after=REV&wait=D answers the
// config once its revision is newer than REV, or 304 when the wait ends.
func (s *Service) pollConfig(w http.ResponseWriter, r *http.Request) {
	ev := Event{Event: "config"}
	uuid, secret, err := slotCredentials(r, &ev)
	if err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	q := r.URL.Query()
	after := int64(0)
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			s.refuse(w, r, ev, invalid("after: %q is not a revision", clip(v)))
			return
		}
	}
	wait := joinapi.DefaultWait
	if v := q.Get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 {
			s.refuse(w, r, ev, invalid("wait: %q is not a duration", clip(v)))
			return
		}
	}
	wait = min(wait, joinapi.MaxWait)
	if _, err := s.store.Check(r.Context(), uuid, secret); err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	text, rev, err := s.store.WatchConfig(ctx, uuid, after)
	ev.Peer = peer(r)
	if errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	ev.Outcome = OutcomeOK
	s.audit.Log(ev)
	writeJSON(w, http.StatusOK, joinapi.ConfigAnswer{Config: text, Revision: rev})
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
