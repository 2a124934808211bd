package sshrun

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
)

// Forward makes the node's host:port (as the node sees it: "127.0.0.1" is
// the node itself) reachable from here through a stream socket in the
// connection's private directory, over this connection (ssh -O forward
// -L): no second TCP connection to the node, and nothing listens on a
// port of the master. The socket goes with Close. The node's sshd must
// allow TCP forwarding for the login user; if it does not, each
// connection to the socket is closed at once.
func (c *Conn) Forward(ctx context.Context, host string, port int) (socket string, err error) {
	if !hostRE.MatchString(host) || port < 1 || port > 65535 {
		return "", fmt.Errorf("%s:%d: not a host and port to forward to", host, port)
	}
	socket = filepath.Join(c.dir, "fwd-"+strconv.Itoa(port))
	spec := socket + ":" + net.JoinHostPort(host, strconv.Itoa(port))
	cmd := exec.CommandContext(ctx, c.cfg.SSH, append([]string{"-S", c.ctl, "-O", "forward", "-L", spec}, c.target()...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: forwarding %s:%d over the connection to %s: %s", ErrConnection, host, port, c.cfg.Host, lastMeaningfulLine(stderr.String()))
	}
	c.cfg.Log.Debug("forwarded over the connection", "host", c.cfg.Host, "to", net.JoinHostPort(host, strconv.Itoa(port)))
	return socket, nil
}
