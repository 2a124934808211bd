package joinclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/problem"
)

// Client talks to one join-service for one token.
type Client struct {
	tok  joinapi.Token
	http *http.Client
	log  *slog.Logger
	// Backoff bounds: the first wait, and the longest.
	MinBackoff, MaxBackoff time.Duration
	// fetches counts this run's fetch attempts, so that a "spent" answer
	// may be told as this run's own earlier fetch whose answer was lost.
	fetches int
	// local is the address the last connection left from.
	local string
	// fetchKey goes with every attempt of this run's fetch, so that an
	// attempt whose answer was lost is answered again, not spent
	// (joinapi.FetchKeyHeader). It is never logged.
	fetchKey string
}

// New returns a client that trusts the server by tok's pins only: no
// system roots, no name check, no proxy, no redirect (a redirect could
// carry the Authorization header elsewhere).
func New(tok joinapi.Token, log *slog.Logger) *Client {
	tr := &http.Transport{
		Proxy:                 nil,
		TLSClientConfig:       TLSConfig(tok.Pins),
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: joinapi.MaxWait + 15*time.Second,
		MaxIdleConns:          1,
		IdleConnTimeout:       30 * time.Second,
	}
	return &Client{tok: tok, log: log, MinBackoff: 500 * time.Millisecond, MaxBackoff: 30 * time.Second, fetchKey: joinapi.NewFetchKey(),
		http: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// TrustError is a server that failed the pin check: it was sent nothing.
type TrustError struct{ Err error }

func (e *TrustError) Error() string { return e.Err.Error() }
func (e *TrustError) Unwrap() error { return e.Err }

// TLSConfig is joinapi.ClientTLSConfig with its refusal marked, so that it
// is told from a network error and never retried.
func TLSConfig(pins []string) *tls.Config {
	cfg := joinapi.ClientTLSConfig(pins)
	verify := cfg.VerifyConnection
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := verify(cs); err != nil {
			return &TrustError{err}
		}
		return nil
	}
	return cfg
}

// CheckServer completes a TLS handshake with the server and sends
// nothing: a dry run's check that the address presents a pinned key.
func (c *Client) CheckServer(ctx context.Context) error {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: TLSConfig(c.tok.Pins)}
	conn, err := d.DialContext(ctx, "tcp", c.tok.Address())
	if err != nil {
		return c.wrap(err)
	}
	return conn.Close()
}

// APIError is an answer other than 200 (and 304 for a poll).
type APIError struct {
	Status int
	Code   string
	// Message is the server's text, which never names the secret.
	Message    string
	retryAfter time.Duration
}

func (e *APIError) Error() string {
	m := e.Message
	if m == "" {
		m = http.StatusText(e.Status)
	}
	if e.Code != "" {
		return fmt.Sprintf("%d %s: %s", e.Status, e.Code, m)
	}
	return fmt.Sprintf("%d: %s", e.Status, m)
}

// transient says whether asking again may succeed: the server or the
// network failed, not the request. A pool without a free slot is final
// too: the machines that lost the race get a clear refusal at once.
func (e *APIError) transient() bool {
	return (e.Status >= 500 && e.Code != joinapi.CodeNoFreeSlot) || e.Status == http.StatusTooManyRequests
}

// do sends one request and decodes a 200 answer into out; 304 returns
// (false, nil).
func (c *Client) do(ctx context.Context, method, path string, body, out any) (bool, error) {
	return c.send(ctx, method, path, body, out, false)
}

// send is do; fetch: the request carries the run's fetch key.
func (c *Client) send(ctx context.Context, method, path string, body, out any, fetch bool) (bool, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return false, err
		}
		rd = bytes.NewReader(b)
	}
	u := url.URL{Scheme: "https", Host: c.tok.Address(), Path: path}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		u.Path, u.RawQuery = path[:i], path[i+1:]
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return false, err
	}
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) {
			if a, ok := i.Conn.LocalAddr().(*net.TCPAddr); ok {
				c.local = a.IP.String()
			}
		}}))
	req.Header.Set("Authorization", "Bearer "+c.tok.Secret)
	if fetch {
		req.Header.Set(joinapi.FetchKeyHeader, c.fetchKey)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return false, c.wrap(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, joinapi.MaxAnswerBody+1))
	if err != nil {
		return false, fmt.Errorf("reading the answer: %w", err)
	}
	if len(data) > joinapi.MaxAnswerBody {
		return false, &APIError{Status: resp.StatusCode, Message: fmt.Sprintf("the answer is more than %d bytes", joinapi.MaxAnswerBody)}
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusAccepted: // 202: a registration request kept
		if err := json.Unmarshal(data, out); err != nil {
			return false, fmt.Errorf("reading the answer: %w", err)
		}
		return true, nil
	case http.StatusNotModified:
		return false, nil
	}
	e := &APIError{Status: resp.StatusCode}
	var body2 joinapi.Error
	if json.Unmarshal(data, &body2) == nil {
		e.Code, e.Message = body2.Code, clip(body2.Message)
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		e.retryAfter = time.Duration(min(s, 60)) * time.Second
	}
	return false, e
}

// wrap names the server in a transport error. url.Error repeats the URL,
// which holds no secret (the secret is in a header).
func (c *Client) wrap(err error) error {
	var te *TrustError
	if errors.As(err, &te) {
		return fmt.Errorf("%s: %w", c.tok.Address(), te)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("%s: %w", c.tok.Address(), err)
}

// retry calls f until it succeeds, fails for good, or ctx ends. Waits grow
// from MinBackoff to MaxBackoff, each drawn in its upper half (jitter), so
// that machines booted together do not ask together.
func (c *Client) retry(ctx context.Context, what string, f func(context.Context) error) error {
	wait := c.MinBackoff
	for attempt := 1; ; attempt++ {
		err := f(ctx)
		if err == nil || !retryable(err) {
			return err
		}
		d := wait/2 + rand.N(wait/2+1) //nolint:gosec // jitter spreads machines out; nothing depends on it being unpredictable
		var ae *APIError
		if errors.As(err, &ae) && ae.retryAfter > d {
			d = ae.retryAfter
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return fmt.Errorf("%s: giving up after %d attempts (--timeout): %w", what, attempt, err)
		}
		c.log.Warn("retrying", "what", what, "attempt", attempt, "in", d.Round(time.Millisecond), "err", err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: giving up after %d attempts: %w", what, attempt, err)
		case <-t.C:
		}
		wait = min(wait*2, c.MaxBackoff)
	}
}

func retryable(err error) bool {
	var te *TrustError
	var ae *APIError
	switch {
	case errors.As(err, &te):
		return false
	case errors.As(err, &ae):
		return ae.transient()
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	return true // the network: refused, reset, timed out, DNS
}

// Fetch fetches the slot's documents, or for a dynamic token takes the
// first free slot of the pool. It spends one use of the secret.
func (c *Client) Fetch(ctx context.Context, nodeName string) (*joinapi.Documents, error) {
	var docs joinapi.Documents
	err := c.retry(ctx, "fetching the documents", func(ctx context.Context) error {
		c.fetches++
		if c.tok.UUID == joinapi.DynamicUUID {
			_, err := c.send(ctx, http.MethodPost, joinapi.PathAssign, joinapi.AssignRequest{NodeName: nodeName}, &docs, true)
			return err
		}
		_, err := c.send(ctx, http.MethodGet, slotPath(joinapi.PathSlot, c.tok.UUID)+"?node_name="+url.QueryEscape(nodeName), nil, &docs, true)
		return err
	})
	if err != nil {
		return nil, c.refusal(err, "fetching slot "+c.tok.UUID)
	}
	if c.tok.UUID == joinapi.DynamicUUID {
		c.tok.UUID = docs.UUID
	}
	return &docs, nil
}

// UUID is the slot's id: the token's, or after a dynamic fetch the one the
// pool gave.
func (c *Client) UUID() string { return c.tok.UUID }

// Report sends a status report, with the address the fetch left from as
// the node's claimed address (a hint: the server records what it sees).
func (c *Client) Report(ctx context.Context, req joinapi.StatusRequest) (*joinapi.StatusAnswer, error) {
	var ans joinapi.StatusAnswer
	err := c.retry(ctx, "reporting "+req.Status, func(ctx context.Context) error {
		if req.ClaimedAddr == "" {
			req.ClaimedAddr = c.local
		}
		_, err := c.do(ctx, http.MethodPost, slotPath(joinapi.PathStatus, c.tok.UUID), req, &ans)
		return err
	})
	if err != nil {
		return nil, c.refusal(err, "reporting "+req.Status+" for slot "+c.tok.UUID)
	}
	return &ans, nil
}

// PollConfig waits up to wait for a config newer than revision after; it
// returns nil when the wait ended with none.
func (c *Client) PollConfig(ctx context.Context, after int64, wait time.Duration) (*joinapi.ConfigAnswer, error) {
	var ans joinapi.ConfigAnswer
	var got bool
	err := c.retry(ctx, "waiting for a new config", func(ctx context.Context) error {
		var err error
		got, err = c.do(ctx, http.MethodGet, fmt.Sprintf("%s?after=%d&wait=%s", slotPath(joinapi.PathConfig, c.tok.UUID), after, wait), nil, &ans)
		return err
	})
	if err != nil {
		return nil, c.refusal(err, "polling the config of slot "+c.tok.UUID)
	}
	if !got {
		return nil, nil
	}
	return &ans, nil
}

func slotPath(p, uuid string) string { return strings.Replace(p, "{uuid}", uuid, 1) }

// refusal turns a final answer into a rejection (exit 3) that names the
// slot and says what to do; a transient failure that outlasted the
// timeout stays a failure (exit 1).
func (c *Client) refusal(err error, where string) error {
	var te *TrustError
	if errors.As(err, &te) {
		return problem.Reject(where, "%v; nothing was sent to it", err).WithHint(
			"the server at " + c.tok.Address() + " is not the master the token pins: check the address, or, if the master's certificate was renewed, give its new pin with --ca-pin")
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.transient() {
		return fmt.Errorf("%s: %w", where, err)
	}
	rej := problem.Reject(where, "the master refused: %v", ae)
	if h := refusalHint(ae, c.fetches > 1 && strings.HasPrefix(where, "fetching"), c.tok.UUID); h != "" {
		rej.Hints = append(rej.Hints, h)
	}
	return rej
}

// refusalHint says what to do about a refusal; retried says the refused
// request was a fetch tried before in this run.
func refusalHint(ae *APIError, retried bool, uuid string) string {
	switch {
	case ae.Code == joinapi.CodeSpent && retried:
		return "the secret has no use left, and not by this run's own earlier attempt (the master answers that again): another machine or run fetched with it, or the master predates fetch keys; ask for a new slot (join-service slot add)"
	case ae.Code == joinapi.CodeSpent:
		return "the secret has no use left (it is single use): ask for a new slot (join-service slot add)"
	case ae.Code == joinapi.CodeExpired:
		return "the secret has expired: ask for a new slot (join-service slot add)"
	case ae.Status == http.StatusUnauthorized:
		return "the master knows no slot " + uuid + " with this secret: check the token, or ask for a new slot"
	case ae.Code == joinapi.CodeNoFreeSlot:
		return "every slot of the dynamic pool is taken: add slots to the pool (join-service slot add) and run again"
	}
	return ""
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// Address is the server's HOST:PORT.
func (c *Client) Address() string { return c.tok.Address() }

// Callback asks for the slot's machine-callback grant (join-service(8),
// "The machine callback") for the node's callback public key.
func (c *Client) Callback(ctx context.Context, req joinapi.CallbackRequest) (*joinapi.CallbackAnswer, error) {
	var ans joinapi.CallbackAnswer
	err := c.retry(ctx, "asking for a callback grant", func(ctx context.Context) error {
		_, err := c.do(ctx, http.MethodPost, slotPath(joinapi.PathCallback, c.tok.UUID), req, &ans)
		return err
	})
	if err != nil {
		return nil, c.refusal(err, "asking for a callback grant for slot "+c.tok.UUID)
	}
	return &ans, nil
}

// Host is the master's host as the token names it, which the node dials.
func (c *Client) Host() string { return c.tok.Host }
