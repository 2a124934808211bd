package joinclient

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nodejoin/nodejoin/internal/joinapi"
)

// Register sends a direct registration request (the client's token has no
// slot yet: its secret is the request secret, whose hash the request
// carries), retrying what may pass.
func (c *Client) Register(ctx context.Context, req joinapi.RegisterRequest) (*joinapi.RegisterAnswer, error) {
	var a joinapi.RegisterAnswer
	err := c.retry(ctx, "sending the registration request", func(ctx context.Context) error {
		_, err := c.do(ctx, http.MethodPost, joinapi.PathRegister, req, &a)
		return err
	})
	if err != nil {
		return nil, c.refusal(err, "registering "+req.Name)
	}
	return &a, nil
}

// PollRegistration waits at most wait for the request of name to change
// and returns its state.
func (c *Client) PollRegistration(ctx context.Context, name string, wait time.Duration) (*joinapi.RegisterAnswer, error) {
	var a joinapi.RegisterAnswer
	p := strings.Replace(joinapi.PathRegistration, "{name}", url.PathEscape(name), 1) + "?wait=" + wait.String()
	err := c.retry(ctx, "polling the registration", func(ctx context.Context) error {
		_, err := c.do(ctx, http.MethodGet, p, nil, &a)
		return err
	})
	if err != nil {
		return nil, c.refusal(err, "polling the registration of "+name)
	}
	return &a, nil
}

// UseSlot makes the client fetch the slot an accepted registration names,
// with the same secret: from here on it is a slot's client.
func (c *Client) UseSlot(uuid string) { c.tok.UUID = uuid }

// SplitServer reads --server's HOST[:PORT] (IPv6 in brackets).
func SplitServer(s string) (string, int, error) { return splitServer(s) }
