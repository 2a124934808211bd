package joinservice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nodejoin/nodejoin/internal/connlimit"
	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/master/registrar"
	"github.com/nodejoin/nodejoin/internal/master/slotstore"
)

// Options configure a Service.
type Options struct {
	Store *slotstore.Store
	// Root is the master's root ("/" in production): the cluster state is
	// read from it at every fetch, so that the documents are today's.
	Root string
	// Host and Port are what tokens name: the address nodes dial.
	Host string
	Port int
	// ExtraPins are pins accepted besides the cluster certificate's own
	// (a rotation's next certificate), put in every token.
	ExtraPins []string
	Audit     *Audit
	Log       *slog.Logger
	Limits    connlimit.Limits
	// SweepEvery is how often expired, never-used slots are removed
	// (0: a minute).
	SweepEvery time.Duration
	// PushParallel bounds the ssconf pushes in flight (0: 16).
	PushParallel int
	// PushDelay is how long the pusher gathers joins before it pushes,
	// and the least time between two pushes (0: 2s): a boot storm of a
	// thousand machines makes a few pushes, not a thousand.
	PushDelay time.Duration

	// Registrar, when set, serves auto-registration's direct requests
	// (register.go); its Run is the caller's.
	Registrar *registrar.Registrar

	// Callback grants machine callbacks (callback.go); nil: none.
	Callback *CallbackOptions
}

// Service is the join-service daemon's state.
type Service struct {
	o       Options
	store   *slotstore.Store
	log     *slog.Logger
	audit   *Audit
	c       *cluster.Cluster
	serving *servingCert
	pusher  *pusher
	// pushCtx ends at shutdown, so that a push to unreachable nodes does
	// not hold it up.
	pushCtx    context.Context
	stopPushes context.CancelFunc
}

// New returns a Service; Serve runs it.
func New(o Options) (*Service, error) {
	if o.Store == nil {
		return nil, errors.New("joinservice: no store")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Port == 0 {
		o.Port = joinapi.DefaultPort
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = time.Minute
	}
	if o.PushParallel <= 0 {
		o.PushParallel = 16
	}
	if o.PushDelay <= 0 {
		o.PushDelay = 2 * time.Second
	}
	for i, p := range o.ExtraPins {
		var err error
		if o.ExtraPins[i], err = joinapi.ParsePin(p); err != nil {
			return nil, err
		}
	}
	c, err := cluster.Open(o.Root)
	if err != nil {
		return nil, fmt.Errorf("reading the cluster state: %w", err)
	}
	s := &Service{o: o, store: o.Store, log: o.Log, audit: o.Audit, c: c, serving: newServingCert(c)}
	s.pushCtx, s.stopPushes = context.WithCancel(context.Background())
	s.pusher = newPusher(s)
	return s, nil
}

// cluster is the master's cluster. Its settings are read at start; the
// certificate it serves with and pins in tokens is the file's as it is at
// each handshake and token (servingCert); the documents are built from the
// files at each fetch, and each record reads and writes them under the
// master's lock.
func (s *Service) cluster() (*cluster.Cluster, error) { return s.c, nil }

// pins are the pins a token carries: the cluster certificate's, then the
// extra ones.
func (s *Service) pins(c *cluster.Cluster) []string {
	server, _ := s.serving.current(time.Now())
	out := []string{joinapi.Pin(server.Cert)}
	for _, p := range s.o.ExtraPins {
		if p != out[0] {
			out = append(out, p)
		}
	}
	return out
}

// apiError is a refusal with its HTTP status, code and message for the
// client, and the reason for the audit log (which may say more).
type apiError struct {
	status  int
	code    string
	message string
	reason  string
}

func (e *apiError) Error() string { return e.reason }

// unauthorized is the one answer for an unknown slot, a wrong secret and
// a dynamic slot not assigned yet, so that a client cannot probe which
// slots exist; the audit log keeps the real reason.
func unauthorized(reason string) *apiError {
	return &apiError{http.StatusUnauthorized, joinapi.CodeUnauthorized, "unknown slot or wrong secret", reason}
}

func invalid(format string, args ...any) *apiError {
	m := fmt.Sprintf(format, args...)
	return &apiError{http.StatusBadRequest, joinapi.CodeInvalid, m, m}
}

// storeError maps the store's refusals to answers.
func storeError(err error) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, slotstore.ErrUnknown), errors.Is(err, slotstore.ErrWrongSecret), errors.Is(err, slotstore.ErrUnassigned):
		return unauthorized(err.Error())
	case errors.Is(err, slotstore.ErrExpired):
		return &apiError{http.StatusGone, joinapi.CodeExpired, "the secret has expired; ask the cluster's administrator for a new one", err.Error()}
	case errors.Is(err, slotstore.ErrSpent):
		return &apiError{http.StatusGone, joinapi.CodeSpent, "the secret has been used; ask the cluster's administrator for a new one", err.Error()}
	case errors.Is(err, slotstore.ErrNotFetched):
		return &apiError{http.StatusConflict, joinapi.CodeNotFetched, "the slot has not been fetched yet", err.Error()}
	case errors.Is(err, slotstore.ErrKeyMismatch):
		return &apiError{http.StatusConflict, joinapi.CodeKeyMismatch, err.Error(), err.Error()}
	case errors.Is(err, slotstore.ErrNoFreeSlot):
		return &apiError{http.StatusServiceUnavailable, joinapi.CodeNoFreeSlot, "no free slot in the pool now", err.Error()}
	case errors.Is(err, slotstore.ErrInvalid):
		return &apiError{http.StatusBadRequest, joinapi.CodeInvalid, err.Error(), err.Error()}
	case errors.Is(err, slotstore.ErrContended), errors.Is(err, slotstore.ErrUnavailable),
		errors.Is(err, context.DeadlineExceeded):
		return &apiError{http.StatusServiceUnavailable, joinapi.CodeUnavailable, "the slot store is busy or unavailable; try again", err.Error()}
	}
	return &apiError{http.StatusInternalServerError, joinapi.CodeInternal, "internal error", err.Error()}
}
