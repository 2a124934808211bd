package join

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/master/sshrun"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
)

// errStale says the master's host keys, hmac key or cluster certificate
// changed while a join ran (cluster-renew): the node may now hold the old
// ones, written after cluster-renew gave it the new, so the join is made
// again with the master's current documents.
var errStale = errors.New("the cluster's keys changed during the join")

// maxStaleRejoins bounds the joins made again for errStale.
const maxStaleRejoins = 3

// stale says whether the documents a join sent differ from what the
// master has now in the files a rotation changes.
func stale(c *cluster.Cluster, prep *joindoc.Prepare, setup *joindoc.DaemonSetup) (bool, error) {
	keys, err := cluster.ReadHostKeys(c.Config)
	if err != nil {
		return false, err
	}
	if len(keys) != len(prep.SSHHostKey) {
		return true, nil
	}
	for i, k := range keys {
		if strings.TrimSpace(k.Public) != strings.TrimSpace(prep.SSHHostKey[i].Public) {
			return true, nil
		}
	}
	hmac, err := os.ReadFile(c.Path(nodeconf.HMACKey))
	if err != nil {
		return false, err
	}
	server, err := os.ReadFile(c.Path(nodeconf.ServerPEM))
	if err != nil {
		return false, err
	}
	return string(hmac) != setup.HMACKey || string(server) != setup.NodeDaemonCertificate, nil
}

// staleOr is errStale when the documents a failed program was given are
// stale: a node that cluster-renew gave the new cluster certificate
// refuses the old one, which documents built before the rotation carry.
// Otherwise it is err.
func staleOr(c *cluster.Cluster, prep *joindoc.Prepare, setup *joindoc.DaemonSetup, err error) error {
	if st, serr := stale(c, prep, setup); serr == nil && st {
		return errStale
	}
	return err
}

// attempt is what one join of a node leaves for the next when it is made
// again: the cluster host keys it gave the node.
type attempt struct {
	prepared []sshrun.HostKey
}

// Retries of a refused connection to a node that holds the cluster's
// keys: its sshd may be restarting (cluster-renew, or another join of it),
// and refuses connections for the moment it takes to listen again.
const (
	refusedRetries = 10
	refusedPause   = 200 * time.Millisecond
)

// dial is sshrun.Dial, with a connection refused by a node that holds the
// cluster's keys (trusted) tried again a few times.
func dial(ctx context.Context, cfg sshrun.Config, trusted bool, log *slog.Logger) (*sshrun.Conn, error) {
	for n := 0; ; n++ {
		conn, err := sshrun.Dial(ctx, cfg)
		if err == nil || !trusted || n == refusedRetries || !errors.Is(err, sshrun.ErrUnreachable) ||
			!strings.Contains(err.Error(), "Connection refused") {
			return conn, err
		}
		log.Info("connection refused; the node's sshd may be restarting", "node", cfg.Host, "retry", n+1)
		select {
		case <-ctx.Done():
			return conn, err
		case <-time.After(refusedPause):
		}
	}
}
