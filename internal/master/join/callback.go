package join

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"strings"

	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/master/sshrun"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/noded"
)

// A node behind a machine callback (callback-setup(8), callback-grant(8))
// is reached through its reverse tunnel: its sshd answers on the
// master's localhost at the port it was granted (Options.Tunnels). The
// master cannot reach its node daemon either, so the daemon is asked
// through the same SSH connection (a forward to the node's 127.0.0.1),
// and the ssconf push opens one SSH connection through the tunnel for it.

// TunnelHost is where a callback tunnel listens on the master.
const TunnelHost = "localhost"

// tunnelSSH points cfg (Host already the node) at node's tunnel, if it
// has one, and returns its port, else 0. The host key is still checked
// under the node's name.
func tunnelSSH(o Options, node string, cfg *sshrun.Config) int {
	port := o.Tunnels[node]
	if port != 0 {
		cfg.Address, cfg.Port = TunnelHost, port
	}
	return port
}

// tunnelAddr is the tunnel as an operator names it: localhost:PORT.
func tunnelAddr(port int) string { return net.JoinHostPort(TunnelHost, fmt.Sprint(port)) }

// tunnelFailure names what failed when the connection through node's
// tunnel failed before any login: nothing listens on the port (the
// tunnel is down), the listener closed the connection (the tunnel is up
// but the node's sshd does not answer through it), or what answers is
// not the node (its host key). nil for other failures, and for a node
// reached directly (port 0).
func tunnelFailure(err error, node string, port int) *failure {
	if port == 0 {
		return nil
	}
	at := tunnelAddr(port)
	check := "check callback-setup on " + node + ": `systemctl status nodejoin-callback` (or the `callback-setup --run` it was started with) and its log; the master's sshd log shows the callback user's logins"
	msg := err.Error()
	var hke *sshrun.HostKeyError
	switch {
	case errors.As(err, &hke):
		// A key other than the node's says that the port is not the
		// node's; an unknown one only that it cannot be told.
		msg := fmt.Sprintf("through its callback tunnel on %s: %v; no login was attempted", at, err)
		hints := hke.Hints()
		switch hke.Problem {
		case sshrun.HostKeyChanged, sshrun.HostKeyNotPinned, sshrun.HostKeyRevoked:
			msg = fmt.Sprintf("what answers on %s is not %s: %v; no login was attempted", at, node, err)
			hints = append([]string{
				fmt.Sprintf("the master reaches %s through its callback tunnel on %s, and the key is checked under the name %s; another process, or another node's tunnel, may hold the port", node, at, node),
				check,
			}, hints...)
		}
		return &failure{step: StepHostKey, msg: msg, hints: hints}
	case errors.Is(err, sshrun.ErrUnreachable) && strings.Contains(msg, "Connection refused"):
		return &failure{step: StepConnect, msg: fmt.Sprintf("the callback tunnel of %s is down: nothing listens on %s, the port it was granted (%v); no login was attempted", node, at, err),
			hints: []string{check, "the node calls back on its own once it reaches the master's sshd; callback-grant(8) and callback-setup(8) say how the two sides are set up"}}
	case errors.Is(err, sshrun.ErrUnreachable):
		return &failure{step: StepConnect, msg: fmt.Sprintf("the callback tunnel of %s on %s is up, but no sshd answered through it (%v); no login was attempted", node, at, err),
			hints: []string{"the tunnel ends at the node's sshd on its own localhost (callback-setup's local_port, default 22): check that sshd runs on " + node + " and listens on localhost", check}}
	}
	return nil
}

// nodedClient is how the master asks the node daemon after the join, and
// where, for messages. A node reached directly: by its address, with SSH
// closed first. A node behind a callback: over conn, forwarded to the
// node's own 127.0.0.1, so conn stays open until the caller closes it.
func nodedClient(ctx context.Context, o Options, conn *sshrun.Conn, tunnel int, node, ip string, port int) (*noded.Client, string, error) {
	client := o.Cluster.NodedClient()
	if tunnel == 0 {
		_ = conn.Close() // done with SSH before waiting for noded
		return client, net.JoinHostPort(ip, fmt.Sprint(port)), nil
	}
	sock, err := conn.Forward(ctx, "127.0.0.1", port)
	if err != nil {
		return nil, "", err
	}
	var d net.Dialer
	via := client.Through(func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "unix", sock) })
	return via, fmt.Sprintf("127.0.0.1:%d of %s (through the SSH connection in its callback tunnel; the node's sshd must allow TCP forwarding for %s)", port, node, loginUser(o)), nil
}

func loginUser(o Options) string {
	if o.SSH.User != "" {
		return o.SSH.User
	}
	return "the login user"
}

// TunnelSsconf collects, for Options.TunnelSsconf, the ssconf that each
// node joined through its tunnel was given.
func TunnelSsconf(results []*Result) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, r := range results {
		if r.OK && r.sentSsconf != nil {
			out[r.Node] = r.sentSsconf
		}
	}
	return out
}

// putSsconfThroughTunnel sends the update to a recorded node behind a
// callback: one SSH connection through its tunnel (the node presents the
// cluster's host key, checked under its name) and the daemon asked over it.
// A node that was given these very values by its join in this run has
// them already: no second SSH connection for a push that changes nothing.
func putSsconfThroughTunnel(ctx context.Context, o Options, node string, port int, update *joindoc.SsconfUpdate) (*joindoc.Result, error) {
	if sent, ok := o.TunnelSsconf[node]; ok && maps.Equal(sent, update.Ssconf) {
		return &joindoc.Result{}, nil
	}
	prep, err := o.Cluster.PrepareDoc()
	if err != nil {
		return nil, err
	}
	cfg := o.SSH
	cfg.Host = node
	tunnelSSH(o, node, &cfg)
	cfg.HostKeyFingerprints = append(append([]string(nil), o.Pins[""]...), o.Pins[node]...)
	cfg.KnownHostsFiles = append(cfg.KnownHostsFiles, o.Cluster.Path(nodeconf.KnownHosts))
	cfg.ClusterKeys, cfg.TrustClusterKeys = ClusterHostKeys(prep), true
	cfg.IdentityFiles = o.Cluster.RootIdentities()
	if o.Log != nil {
		cfg.Log = o.Log
	}
	conn, err := sshrun.Dial(ctx, cfg)
	if err != nil {
		if f := tunnelFailure(err, node, port); f != nil {
			return nil, errors.New(f.msg)
		}
		return nil, fmt.Errorf("through its callback tunnel on %s: %w", tunnelAddr(port), err)
	}
	defer func() { _ = conn.Close() }()
	client, _, err := nodedClient(ctx, o, conn, port, node, "", o.NodeDaemonPort)
	if err != nil {
		return nil, err
	}
	return client.PutSsconf(ctx, node, o.NodeDaemonPort, update)
}
