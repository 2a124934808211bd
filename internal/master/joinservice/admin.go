package joinservice

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/master/slotstore"
)

// maxAddBody bounds slot add's document: a config of 1 MiB, which JSON
// may escape to six bytes a byte, and the rest.
const maxAddBody = 6*slotstore.MaxConfig + 64<<10

// The admin API, served on the root-only unix socket only.
const (
	AdminSlots       = "/admin/v1/slots"
	AdminSlot        = "/admin/v1/slots/{uuid}"
	AdminSlotConfig  = "/admin/v1/slots/{uuid}/config"
	AdminRemoveStale = "/admin/v1/remove-stale"
)

// AddRequest is `slot add`'s document.
type AddRequest struct {
	UUID     string            `json:"uuid,omitempty"`
	NodeName string            `json:"node_name,omitempty"`
	Config   *string           `json:"config,omitempty"` // text, kept byte for byte
	Params   map[string]string `json:"params,omitempty"`
	Dynamic  bool              `json:"dynamic,omitempty"`
	// Secret adds a dynamic slot to an existing pool: the pool's secret,
	// as the first add of the pool printed it. Never on a command line.
	Secret   string `json:"secret,omitempty"`
	TTL      string `json:"ttl,omitempty"` // a Go duration: "30m", "2h"; default 1h
	Uses     int    `json:"uses,omitempty"`
	Reusable bool   `json:"reusable,omitempty"`
}

// AddAnswer is `slot add`'s result: the secret and the boot parameter
// that carries it, printed this once.
type AddAnswer struct {
	UUID      string    `json:"uuid"`
	Secret    string    `json:"secret"`
	BootParam string    `json:"boot_param"`
	Expires   time.Time `json:"expires"`
	Pins      []string  `json:"pins"`
}

// SlotView is a slot as `slot list` and `slot show` print it: never its
// secret nor the secret's hash.
type SlotView struct {
	UUID           string            `json:"uuid"`
	NodeName       string            `json:"node_name,omitempty"`
	State          string            `json:"state"`
	Dynamic        bool              `json:"dynamic"`
	MaxUses        int               `json:"max_uses"` // 0: reusable until it expires
	Used           int               `json:"used"`
	Expired        bool              `json:"expired"`
	Created        time.Time         `json:"created"`
	Expires        time.Time         `json:"expires"`
	Assigned       *time.Time        `json:"assigned,omitempty"`
	LastSeen       *time.Time        `json:"last_seen,omitempty"`
	Params         map[string]string `json:"params,omitempty"`
	PinnedKey      string            `json:"pinned_key,omitempty"`
	Report         *ReportView       `json:"report,omitempty"`
	Config         *string           `json:"config,omitempty"` // show only
	ConfigRevision int64             `json:"config_revision,omitempty"`
}

// ReportView is a slot's last report.
type ReportView struct {
	Status      string            `json:"status"`
	Params      map[string]string `json:"params,omitempty"`
	Peer        string            `json:"peer"`
	ClaimedAddr string            `json:"claimed_addr,omitempty"`
	Time        time.Time         `json:"time"`
}

// RemovedAnswer is remove-stale's result.
type RemovedAnswer struct {
	Removed int `json:"removed"`
}

// ConfigSet is set-config's result.
type ConfigSet struct {
	UUID           string `json:"uuid"`
	ConfigRevision int64  `json:"config_revision"`
}

func view(s slotstore.Slot, now time.Time, withConfig bool) SlotView {
	v := SlotView{UUID: s.UUID, NodeName: s.NodeName, State: string(s.State), Dynamic: s.Dynamic,
		MaxUses: s.MaxUses, Used: s.Used, Expired: s.Expired(now), Created: s.Created, Expires: s.Expires,
		Params: s.Params, PinnedKey: s.PinnedKey}
	if !s.Assigned.IsZero() {
		t := s.Assigned
		v.Assigned = &t
	}
	if !s.LastSeen.IsZero() {
		t := s.LastSeen
		v.LastSeen = &t
	}
	if r := s.Report; r != nil {
		v.Report = &ReportView{Status: r.Status, Params: r.Params, Peer: r.Peer, ClaimedAddr: r.ClaimedAddr, Time: r.Time}
	}
	if withConfig {
		c := string(s.Config)
		v.Config, v.ConfigRevision = &c, s.ConfigRevision
	}
	return v
}

// AdminHandler serves the admin API; Serve puts it on the unix socket,
// behind the peer's credentials.
func (s *Service) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+AdminSlots, s.adminAdd)
	mux.HandleFunc("GET "+AdminSlots, s.adminList)
	mux.HandleFunc("GET "+AdminSlot, s.adminShow)
	mux.HandleFunc("DELETE "+AdminSlot, s.adminRemove)
	mux.HandleFunc("PUT "+AdminSlotConfig, s.adminSetConfig)
	mux.HandleFunc("POST "+AdminRemoveStale, s.adminRemoveStale)
	s.registerAdminRoutes(mux)
	return mux
}

// adminRefuse answers err; the audit line, if any, is the caller's.
func adminRefuse(w http.ResponseWriter, err error) {
	ae := storeError(err)
	msg := ae.message
	if ae.code == joinapi.CodeUnauthorized {
		msg = ae.reason // the administrator may know why
	}
	writeJSON(w, ae.status, joinapi.Error{Code: ae.code, Message: msg})
}

func (s *Service) adminAdd(w http.ResponseWriter, r *http.Request) {
	ev := Event{Event: "issue", Peer: "admin"}
	var req AddRequest
	if err := decodeBody(w, r, maxAddBody, &req); err != nil {
		s.adminFail(w, ev, err)
		return
	}
	n := slotstore.NewSlot{UUID: req.UUID, NodeName: req.NodeName, Params: req.Params, Dynamic: req.Dynamic,
		Secret: req.Secret, Uses: req.Uses, Reusable: req.Reusable}
	if req.Config != nil {
		n.Config = []byte(*req.Config)
	}
	if req.Secret != "" && !req.Dynamic {
		s.adminFail(w, ev, invalid("/secret: only a dynamic slot joins a pool by its secret; a slot's own secret is generated"))
		return
	}
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			s.adminFail(w, ev, invalid("/ttl: %q is not a positive duration (30m, 2h)", clip(req.TTL)))
			return
		}
		n.TTL = d
	}
	if ip := req.Params["primary_ip"]; ip != "" && net.ParseIP(ip) == nil {
		s.adminFail(w, ev, invalid("/params/primary_ip: %q is not an IP address", clip(ip)))
		return
	}
	c, err := s.cluster()
	if err != nil {
		s.adminFail(w, ev, err)
		return
	}
	if n.NodeName != "" {
		if err := cluster.CheckName(n.NodeName); err != nil {
			s.adminFail(w, ev, invalid("/node_name: %v", err))
			return
		}
	}
	added, err := s.store.Add(r.Context(), n)
	if err != nil {
		if errors.Is(err, slotstore.ErrExists) {
			err = &apiError{http.StatusConflict, "exists", err.Error(), err.Error()}
		}
		s.adminFail(w, ev, err)
		return
	}
	uuid := added.Slot.UUID
	if added.Slot.Dynamic {
		uuid = joinapi.DynamicUUID
	}
	tok := joinapi.Token{UUID: uuid, Host: s.o.Host, Secret: added.Secret, Pins: s.pins(c)}
	if s.o.Port != joinapi.DefaultPort {
		tok.Port = s.o.Port
	}
	ev.Slot, ev.Node, ev.Outcome = added.Slot.UUID, added.Slot.NodeName, OutcomeOK
	s.audit.Log(ev)
	writeJSON(w, http.StatusOK, AddAnswer{UUID: added.Slot.UUID, Secret: added.Secret, BootParam: tok.BootParam(),
		Expires: added.Slot.Expires, Pins: tok.Pins})
}

func (s *Service) adminFail(w http.ResponseWriter, ev Event, err error) {
	if errors.Is(err, slotstore.ErrInvalid) {
		// The store names the field: say it as the document's pointer.
		err = invalid("/%s", strings.TrimPrefix(err.Error(), slotstore.ErrInvalid.Error()+": "))
	}
	ae := storeError(err)
	ev.Outcome, ev.Reason = OutcomeRefused, ae.reason
	if ae.status >= 500 {
		ev.Outcome = OutcomeFailed
	}
	s.audit.Log(ev)
	adminRefuse(w, err)
}

func (s *Service) adminList(w http.ResponseWriter, r *http.Request) {
	slots, err := s.store.List(r.Context())
	if err != nil {
		adminRefuse(w, err)
		return
	}
	now := time.Now()
	out := make([]SlotView, len(slots))
	for i, sl := range slots {
		out[i] = view(sl, now, false)
	}
	writeJSON(w, http.StatusOK, out)
}

// adminSlot is the slot of the path; an unknown one is 404 here, where
// the caller is root.
func adminSlot(w http.ResponseWriter, r *http.Request) (string, bool) {
	u, err := slotstore.CheckUUID(r.PathValue("uuid"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, joinapi.Error{Code: joinapi.CodeInvalid, Message: err.Error()})
		return "", false
	}
	return u, true
}

func adminUnknown(w http.ResponseWriter, err error) bool {
	if errors.Is(err, slotstore.ErrUnknown) {
		writeJSON(w, http.StatusNotFound, joinapi.Error{Code: "unknown", Message: "unknown slot"})
		return true
	}
	return false
}

func (s *Service) adminShow(w http.ResponseWriter, r *http.Request) {
	u, ok := adminSlot(w, r)
	if !ok {
		return
	}
	sl, err := s.store.Get(r.Context(), u)
	if adminUnknown(w, err) {
		return
	}
	if err != nil {
		adminRefuse(w, err)
		return
	}
	writeJSON(w, http.StatusOK, view(sl, time.Now(), true))
}

func (s *Service) adminRemove(w http.ResponseWriter, r *http.Request) {
	u, ok := adminSlot(w, r)
	if !ok {
		return
	}
	ev := Event{Event: "remove", Slot: u, Peer: "admin", Outcome: OutcomeOK}
	err := s.store.Remove(r.Context(), u)
	if err != nil {
		ev.Outcome, ev.Reason = OutcomeRefused, err.Error()
	}
	s.audit.Log(ev)
	if adminUnknown(w, err) {
		return
	}
	if err != nil {
		adminRefuse(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"removed": u})
}

func (s *Service) adminRemoveStale(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query().Get("older_than")
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		writeJSON(w, http.StatusBadRequest, joinapi.Error{Code: joinapi.CodeInvalid,
			Message: fmt.Sprintf("older_than: %q is not a positive duration", clip(v))})
		return
	}
	n, err := s.store.RemoveStale(r.Context(), d)
	ev := Event{Event: "remove-stale", Peer: "admin", Outcome: OutcomeOK, Count: &n, Reason: "older than " + d.String()}
	if err != nil {
		ev.Outcome, ev.Reason = OutcomeFailed, err.Error()
	}
	s.audit.Log(ev)
	if err != nil {
		adminRefuse(w, err)
		return
	}
	writeJSON(w, http.StatusOK, RemovedAnswer{Removed: n})
}

func (s *Service) adminSetConfig(w http.ResponseWriter, r *http.Request) {
	u, ok := adminSlot(w, r)
	if !ok {
		return
	}
	ev := Event{Event: "set-config", Slot: u, Peer: "admin"}
	text, err := io.ReadAll(http.MaxBytesReader(w, r.Body, slotstore.MaxConfig))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = &apiError{http.StatusRequestEntityTooLarge, joinapi.CodeTooLarge,
			"config: more than " + strconv.Itoa(slotstore.MaxConfig) + " bytes (1 MiB)", "config too large"}
	}
	if err != nil {
		s.adminFail(w, ev, err)
		return
	}
	rev, err := s.store.SetConfig(r.Context(), u, text)
	if errors.Is(err, slotstore.ErrUnknown) {
		ev.Outcome, ev.Reason = OutcomeRefused, err.Error()
		s.audit.Log(ev)
		adminUnknown(w, err)
		return
	}
	if err != nil {
		s.adminFail(w, ev, err)
		return
	}
	ev.Outcome = OutcomeOK
	s.audit.Log(ev)
	writeJSON(w, http.StatusOK, ConfigSet{UUID: u, ConfigRevision: rev})
}
