package noded

import (
	"context"
	"net"
	"net/http"
)

// Through returns a client that reaches the node daemon through dial
// instead of by its address, as through a socket forwarded over the SSH
// connection to a node the master cannot reach directly. The host given
// to its methods then only names the node in messages; the daemon is
// trusted by the cluster certificate, as always, never by a name.
func (c *Client) Through(dial func(ctx context.Context) (net.Conn, error)) *Client {
	tr := c.http.Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) }
	return &Client{http: &http.Client{Transport: tr, Timeout: c.http.Timeout}}
}
