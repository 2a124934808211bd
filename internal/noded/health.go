package noded

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
)

// Health asks host:port for /health. A degraded daemon answers 503 with
// its checks, which are returned, not an error.
func (c *Client) Health(ctx context.Context, host string, port int) (*Health, error) {
	u := "https://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/health"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	var h Health
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		return nil, fmt.Errorf("GET /health: %s", resp.Status)
	}
	if err := json.Unmarshal(data, &h); err != nil || h.Status == "" {
		return nil, fmt.Errorf("GET /health: %s: not a health answer", resp.Status)
	}
	return &h, nil
}
