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
	"net/url"
	"time"

	"github.com/nodejoin/nodejoin/internal/joinapi"
)

// AdminClient calls the daemon's admin API on its unix socket.
type AdminClient struct {
	http *http.Client
	path string
}

// NewAdminClient returns a client of the socket at path.
func NewAdminClient(path string) *AdminClient {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}
	return &AdminClient{http: &http.Client{Transport: tr, Timeout: 30 * time.Second}, path: path}
}

// ErrNotRunning: nothing answers on the admin socket.
var ErrNotRunning = errors.New("join-service is not running (nothing answers on its admin socket)")

// AdminError is the daemon's refusal: its HTTP status and error body.
type AdminError struct {
	Status int
	Body   joinapi.Error
}

func (e *AdminError) Error() string { return e.Body.Message }

// Rejected says whether the daemon refused the input (bad document,
// unknown slot, too large): nothing changed.
func (e *AdminError) Rejected() bool { return e.Status >= 400 && e.Status < 500 }

// Do sends one request (body may be nil) and decodes a 200 answer into out.
func (c *AdminClient) Do(ctx context.Context, method, path string, query url.Values, body []byte, out any) error {
	u := "http://join-service" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ne *net.OpError
		if errors.As(err, &ne) && ne.Op == "dial" {
			return fmt.Errorf("%s: %w", c.path, ErrNotRunning)
		}
		return fmt.Errorf("%s: %w", c.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		ae := &AdminError{Status: resp.StatusCode}
		if json.Unmarshal(b, &ae.Body) != nil || ae.Body.Message == "" {
			ae.Body.Message = fmt.Sprintf("the daemon answered %s", resp.Status)
		}
		return ae
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}
