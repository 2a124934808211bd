package joinservice

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/nodejoin/nodejoin/internal/advert"
	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/master/registrar"
	"github.com/nodejoin/nodejoin/internal/master/slotstore"
	"github.com/nodejoin/nodejoin/internal/sshkeys"
)

// The registrar's admin API, on the same root-only socket as the slots'.
const (
	AdminRequests      = "/admin/v1/requests"
	AdminRequestAccept = "/admin/v1/requests/{name}/accept"
	AdminRequestReject = "/admin/v1/requests/{name}/reject"
	AdminRequest       = "/admin/v1/requests/{name}"
	AdminExpect        = "/admin/v1/expect/{name}"
	AdminInstallWindow = "/admin/v1/install-window"
	AdminTokens        = "/admin/v1/tokens" //nolint:gosec // G101: a path, not a credential
)

// registerRoutes adds the registration service to the nodes' API.
func (s *Service) registerRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+joinapi.PathRegister, s.register)
	mux.HandleFunc("GET "+joinapi.PathRegistration, s.registration)
}

// registerAdminRoutes adds `requests` and `install-window` to the admin API.
func (s *Service) registerAdminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+AdminRequests, s.adminRequests)
	mux.HandleFunc("POST "+AdminRequestAccept, s.adminAccept)
	mux.HandleFunc("POST "+AdminRequestReject, s.adminReject)
	mux.HandleFunc("DELETE "+AdminRequest, s.adminForget)
	mux.HandleFunc("PUT "+AdminExpect, s.adminExpect)
	mux.HandleFunc("POST "+AdminInstallWindow, s.adminWindow)
	mux.HandleFunc("POST "+AdminTokens, s.adminToken)
}

// kickRegistrar asks the registrar for a pass after a join, so that a
// registration's record is registered at once, not at its next tick.
func (s *Service) kickRegistrar() {
	if s.o.Registrar != nil {
		s.o.Registrar.Kick()
	}
}

// registrarError maps the registrar's refusals to answers.
func registrarError(err error) error {
	switch {
	case errors.Is(err, registrar.ErrUnknown):
		return unauthorizedRequest(err.Error())
	case errors.Is(err, registrar.ErrBadToken):
		return &apiError{http.StatusUnauthorized, joinapi.CodeUnauthorized, "unknown, expired or used-up registration token", err.Error()}
	case errors.Is(err, registrar.ErrSecretMismatch):
		return &apiError{http.StatusConflict, joinapi.CodeRequestExists, err.Error(), err.Error()}
	case errors.Is(err, registrar.ErrRegistered):
		return &apiError{http.StatusConflict, "registered", err.Error(), err.Error()}
	case errors.Is(err, registrar.ErrInvalid):
		return invalid("%v", err)
	case errors.Is(err, registrar.ErrFull):
		return &apiError{http.StatusServiceUnavailable, joinapi.CodeUnavailable, "the registrar is full; try again later", err.Error()}
	}
	return err
}

// unauthorizedRequest is the one answer for an unknown request and a wrong
// request secret, as unauthorized is for slots.
func unauthorizedRequest(reason string) *apiError {
	return &apiError{http.StatusUnauthorized, joinapi.CodeUnauthorized, "unknown request or wrong secret", reason}
}

func (s *Service) noRegistrar(w http.ResponseWriter, r *http.Request, ev Event) bool {
	if s.o.Registrar != nil {
		return false
	}
	s.refuse(w, r, ev, &apiError{http.StatusNotFound, "not_found", "this join-service has no registrar", "no registrar"})
	return true
}

// register: POST /v1/register records a machine's direct request (the
// same record an advert makes) and answers its state.
func (s *Service) register(w http.ResponseWriter, r *http.Request) {
	ev := Event{Event: "request"}
	if s.noRegistrar(w, r, ev) {
		return
	}
	var req joinapi.RegisterRequest
	if err := decodeBody(w, r, joinapi.MaxRequestBody, &req); err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	ev.Node = clip(req.Name)
	c, err := s.cluster()
	if err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	sg, err := s.sighting(r, c, req)
	if err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	rec, err := s.o.Registrar.Observe(r.Context(), sg)
	if err != nil {
		s.refuse(w, r, ev, registrarError(err))
		return
	}
	ev.Peer, ev.Outcome, ev.Status = peer(r), OutcomeOK, string(rec.State)
	s.audit.Log(ev)
	writeJSON(w, http.StatusAccepted, answerOf(rec))
}

// sighting checks a request and makes the registrar's sighting of it.
func (s *Service) sighting(r *http.Request, c *cluster.Cluster, req joinapi.RegisterRequest) (registrar.Sighting, error) {
	var sg registrar.Sighting
	if req.Cluster != c.Settings.ClusterName {
		return sg, invalid("cluster: %q is not this cluster (%s)", clip(req.Cluster), c.Settings.ClusterName)
	}
	pub, err := sshkeys.ParsePublicLine(req.HostKey)
	if err != nil {
		return sg, invalid("host_key: %v", err)
	}
	if err := slotstore.CheckSecretHash(req.RequestSecretHash); err != nil {
		return sg, invalid("request_secret_hash: want 64 lower-case hex digits (SHA-256 of the request secret)")
	}
	a := advert.Advert{Role: req.Role, Cluster: req.Cluster, Name: req.Name, Parent: req.Parent,
		HostKey: sshkeys.Fingerprint(pub), State: advert.Ready}
	if err := a.Check(); err != nil {
		return sg, invalid("%v", err)
	}
	if req.Name == c.Settings.MasterNode {
		return sg, &apiError{http.StatusConflict, joinapi.CodeNameTaken, "name: the master's", "name: the master's"}
	}
	proven := false
	if req.Signature != "" {
		if err := joinapi.VerifyRegister(pub, req.Name, req.RequestSecretHash, req.Signature); err != nil {
			return sg, invalid("%v", err)
		}
		proven = true
	}
	p, _ := netip.ParseAddr(peer(r))
	var local netip.Addr
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(la.String()); err == nil {
			local = ap.Addr()
		}
	}
	return registrar.Sighting{Source: registrar.SourceRequest, Advert: a, Addr: peer(r),
		Local: s.o.Registrar.Local(p, local), SecretHash: req.RequestSecretHash, HostKeyProven: proven, Token: req.Token}, nil
}

func answerOf(rec *registrar.Record) joinapi.RegisterAnswer {
	a := joinapi.RegisterAnswer{Name: rec.Name, State: string(rec.State), Reason: rec.Reason}
	if (rec.State == registrar.Registering || rec.State == registrar.Registered) && rec.Issued {
		a.Slot = rec.Slot
	}
	return a
}

// registration: GET /v1/register/{name} with the request secret answers
// the request's state; ?wait=D waits for a change first.
func (s *Service) registration(w http.ResponseWriter, r *http.Request) {
	ev := Event{Event: "poll"}
	if s.noRegistrar(w, r, ev) {
		return
	}
	name := r.PathValue("name")
	ev.Node = clip(name)
	secret, ok := bearer(r)
	if !ok {
		s.refuse(w, r, ev, unauthorizedRequest("no secret in the Authorization header"))
		return
	}
	wait := time.Duration(0)
	if v := r.URL.Query().Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			s.refuse(w, r, ev, invalid("wait: %q is not a duration", clip(v)))
			return
		}
		wait = min(d, joinapi.MaxWait)
	}
	rec, err := s.authRequest(r.Context(), name, secret)
	if err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	if wait > 0 && answerOf(rec).Slot == "" {
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		err := s.o.Registrar.Watch(ctx, name)
		cancel()
		if err != nil && r.Context().Err() != nil {
			return
		}
		if rec, err = s.authRequest(r.Context(), name, secret); err != nil {
			s.refuse(w, r, ev, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, answerOf(rec))
}

// authRequest reads a request by its secret: an unknown name and a wrong
// secret get the same refusal.
func (s *Service) authRequest(ctx context.Context, name, secret string) (*registrar.Record, error) {
	rec, err := s.o.Registrar.Get(ctx, name)
	if errors.Is(err, registrar.ErrUnknown) {
		return nil, unauthorizedRequest("unknown request")
	}
	if err != nil {
		return nil, err
	}
	if rec.SecretHash == "" || !slotstore.HashMatches(rec.SecretHash, slotstore.HashSecret(secret)) {
		return nil, unauthorizedRequest("wrong request secret")
	}
	return rec, nil
}

// RequestsAnswer is `requests list`'s result: never a secret nor a hash.
type RequestsAnswer struct {
	Mode          string            `json:"mode"`
	InstallWindow *WindowAnswer     `json:"install_window,omitempty"`
	Expected      map[string]string `json:"expected"`
	Requests      []RequestView     `json:"requests"`
}

// RequestView is one record as the admin sees it.
type RequestView struct {
	Name        string    `json:"name"`
	Role        string    `json:"role"`
	Parent      string    `json:"parent,omitempty"`
	State       string    `json:"state"`
	Reason      string    `json:"reason,omitempty"`
	HostKey     string    `json:"host_key"`
	ConflictKey string    `json:"conflict_key,omitempty"`
	Proven      bool      `json:"host_key_proven"`
	Sources     []string  `json:"sources"`
	AdvertAddr  string    `json:"advert_addr,omitempty"`
	Interface   string    `json:"interface,omitempty"`
	RequestAddr string    `json:"request_addr,omitempty"`
	Local       bool      `json:"local"`
	Requested   bool      `json:"requested"`
	Withdrawn   bool      `json:"withdrawn,omitempty"`
	AcceptedBy  string    `json:"accepted_by,omitempty"`
	Slot        string    `json:"slot,omitempty"`
	Attempts    int       `json:"attempts,omitempty"`
	First       time.Time `json:"first"`
	Seen        time.Time `json:"seen"`
	Changed     time.Time `json:"changed"`
}

// WindowAnswer is the install window.
type WindowAnswer struct {
	Open   bool      `json:"open"`
	Opened time.Time `json:"opened"`
	Until  time.Time `json:"until"`
}

func requestView(r *registrar.Record) RequestView {
	return RequestView{Name: r.Name, Role: r.Role, Parent: r.Parent, State: string(r.State), Reason: r.Reason,
		HostKey: r.HostKey, ConflictKey: r.ConflictKey, Proven: r.HostKeyProven, Sources: r.Sources,
		AdvertAddr: r.AdvertAddr, Interface: r.Interface, RequestAddr: r.RequestAddr, Local: r.Local,
		Requested: r.SecretHash != "", Withdrawn: r.Withdrawn, AcceptedBy: r.AcceptedBy, Slot: r.Slot,
		Attempts: r.Attempts, First: r.First, Seen: r.Seen, Changed: r.Changed}
}

func (s *Service) adminNoRegistrar(w http.ResponseWriter) bool {
	if s.o.Registrar != nil {
		return false
	}
	writeJSON(w, http.StatusNotFound, joinapi.Error{Code: "not_found", Message: "this join-service has no registrar"})
	return true
}

func (s *Service) adminRequests(w http.ResponseWriter, r *http.Request) {
	if s.adminNoRegistrar(w) {
		return
	}
	g := s.o.Registrar
	recs, err := g.List(r.Context())
	if err != nil {
		adminRefuse(w, err)
		return
	}
	exp, err := g.Expected(r.Context())
	if err != nil {
		adminRefuse(w, err)
		return
	}
	win, open, err := g.InstallWindow(r.Context())
	if err != nil {
		adminRefuse(w, err)
		return
	}
	out := RequestsAnswer{Mode: string(g.Mode()), Expected: exp, Requests: []RequestView{}}
	if !win.Until.IsZero() {
		out.InstallWindow = &WindowAnswer{Open: open, Opened: win.Opened, Until: win.Until}
	}
	for _, rec := range recs {
		out.Requests = append(out.Requests, requestView(rec))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) adminDecide(w http.ResponseWriter, r *http.Request, do func(context.Context, string) (*registrar.Record, error)) {
	if s.adminNoRegistrar(w) {
		return
	}
	rec, err := do(r.Context(), r.PathValue("name"))
	if err != nil {
		if errors.Is(err, registrar.ErrUnknown) {
			writeJSON(w, http.StatusNotFound, joinapi.Error{Code: "unknown", Message: err.Error()})
			return
		}
		adminRefuse(w, registrarError(err))
		return
	}
	writeJSON(w, http.StatusOK, requestView(rec))
}

func (s *Service) adminAccept(w http.ResponseWriter, r *http.Request) {
	s.adminDecide(w, r, s.o.Registrar.Accept)
}

func (s *Service) adminReject(w http.ResponseWriter, r *http.Request) {
	s.adminDecide(w, r, s.o.Registrar.Reject)
}

func (s *Service) adminForget(w http.ResponseWriter, r *http.Request) {
	s.adminDecide(w, r, s.o.Registrar.Forget)
}

// ExpectRequest is `requests expect`'s body.
type ExpectRequest struct {
	HostKey string `json:"host_key"`
}

func (s *Service) adminExpect(w http.ResponseWriter, r *http.Request) {
	if s.adminNoRegistrar(w) {
		return
	}
	var req ExpectRequest
	if err := decodeBody(w, r, 4<<10, &req); err != nil {
		adminRefuse(w, err)
		return
	}
	name := r.PathValue("name")
	if err := cluster.CheckName(name); err != nil {
		adminRefuse(w, invalid("NAME: %v", err))
		return
	}
	if err := s.o.Registrar.Expect(r.Context(), name, req.HostKey); err != nil {
		adminRefuse(w, registrarError(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"name": name, "host_key": req.HostKey})
}

func (s *Service) adminWindow(w http.ResponseWriter, r *http.Request) {
	if s.adminNoRegistrar(w) {
		return
	}
	d, err := time.ParseDuration(r.URL.Query().Get("for"))
	if err != nil {
		adminRefuse(w, invalid("--for: %q is not a duration (15m, 1h; 0 closes)", clip(r.URL.Query().Get("for"))))
		return
	}
	win, err := s.o.Registrar.OpenWindow(r.Context(), d)
	if err != nil {
		adminRefuse(w, registrarError(err))
		return
	}
	writeJSON(w, http.StatusOK, WindowAnswer{Open: d > 0, Opened: win.Opened, Until: win.Until})
}

// TokenAnswer is `requests token`'s result: the token, shown this once.
type TokenAnswer struct {
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
	Uses    int       `json:"uses"`
}

func (s *Service) adminToken(w http.ResponseWriter, r *http.Request) {
	if s.adminNoRegistrar(w) {
		return
	}
	q := r.URL.Query()
	ttl, err := time.ParseDuration(q.Get("ttl"))
	if err != nil {
		adminRefuse(w, invalid("--ttl: %q is not a duration", clip(q.Get("ttl"))))
		return
	}
	uses, err := strconv.Atoi(q.Get("uses"))
	if err != nil {
		adminRefuse(w, invalid("--uses: %q is not a number", clip(q.Get("uses"))))
		return
	}
	tok, exp, err := s.o.Registrar.NewToken(r.Context(), ttl, uses)
	if err != nil {
		adminRefuse(w, registrarError(err))
		return
	}
	writeJSON(w, http.StatusOK, TokenAnswer{Token: tok, Expires: exp, Uses: uses})
}

// RegistrarAudit writes the registrar's events to the audit log.
func RegistrarAudit(a *Audit) func(registrar.Event) {
	return func(e registrar.Event) {
		a.Log(Event{Event: e.Event, Node: e.Node, Peer: e.Peer, Outcome: e.Outcome, Reason: e.Reason, Slot: e.Slot})
	}
}
