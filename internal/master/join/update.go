package join

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
)

// StepSSHUpdate is ssh-update's step, as its result names it.
const StepSSHUpdate = "ssh-update"

// SSHUpdate runs ssh-update (program, o.RemoteArgs) with doc on the
// recorded node over one SSH connection, reached and trusted as a join
// reaches a recorded node (the cluster's host keys, those of a rotation's
// window, the root keys the master offers during a rotation of them).
func SSHUpdate(ctx context.Context, o Options, node, program string, doc *joindoc.SSHUpdate) error {
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	prep, err := o.Cluster.PrepareDoc()
	if err != nil {
		return err
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	cfg := o.SSH
	cfg.Host = node
	tunnelSSH(o, node, &cfg)
	cfg.HostKeyFingerprints = append(append([]string(nil), o.Pins[""]...), o.Pins[node]...)
	cfg.KnownHostsFiles = append(cfg.KnownHostsFiles, o.Cluster.Path(nodeconf.KnownHosts))
	cfg.ClusterKeys = append(ClusterHostKeys(prep), o.Cluster.WindowHostKeys(time.Now())...)
	cfg.TrustClusterKeys = true
	cfg.IdentityFiles = o.Cluster.RootIdentities()
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.Log = log
	conn, err := dial(ctx, cfg, true, log)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", node, err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := runProgram(ctx, conn, StepSSHUpdate, append([]string{program}, o.RemoteArgs...), b); err != nil {
		return err
	}
	return nil
}
