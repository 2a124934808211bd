// Package joinapply applies the two documents node-join fetched, through
// exactly the code of prepare-node-join and node-daemon-setup: the same
// decoders (schema, strict decode), the same plans (internal/node/prepare,
// internal/node/daemonsetup) and the same transaction and rollback
// (internal/apply). Both documents are checked against the node before
// either is applied, so that a refusal of the second leaves the first
// unapplied too.
package joinapply

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"

	"github.com/nodejoin/nodejoin/internal/apply"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/node/daemonsetup"
	"github.com/nodejoin/nodejoin/internal/node/prepare"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
)

// Results are the two programs' results, as each would print it.
type Results struct {
	Prepare     joindoc.Result `json:"prepare_node_join"`
	DaemonSetup joindoc.Result `json:"node_daemon_setup"`
}

// Checked is a pair of documents checked against the node, ready to apply.
type Checked struct {
	cfg                 *nodeconf.Config
	log                 *slog.Logger
	prepPlan, setupPlan apply.Planner
	// RootPublicKey is the login user's public key the node will have: the
	// one it has, or the one the check generated (and Apply installs).
	RootPublicKey string
}

// Check decodes both documents as the two programs do, finishes an
// interrupted earlier run, and plans both against the node, so that a
// refusal of either (exit 3) comes before anything is written.
func Check(ctx context.Context, cfg *nodeconf.Config, log *slog.Logger, prepDoc, setupDoc []byte) (*Checked, error) {
	prep, err := joindoc.DecodePrepare(bytes.NewReader(prepDoc))
	if err != nil {
		return nil, fmt.Errorf("prepare_node_join: %w", err)
	}
	setup, err := joindoc.DecodeDaemonSetup(bytes.NewReader(setupDoc))
	if err != nil {
		return nil, fmt.Errorf("node_daemon_setup: %w", err)
	}
	if err := apply.Recover(ctx, cfg, log, false); err != nil {
		return nil, err
	}
	// One planner each for the whole run: a key or certificate generated
	// here is the one applied.
	c := &Checked{cfg: cfg, log: log, prepPlan: prepare.Planner(cfg, prep), setupPlan: daemonsetup.Planner(cfg, setup)}
	// Neither plan reads what the other writes (SSH files; the data
	// directory), so both are checked against the node as it is now.
	p, err := c.prepPlan()
	if err != nil {
		return nil, fmt.Errorf("prepare_node_join: %w", err)
	}
	c.RootPublicKey = p.Result.RootPublicKey
	if _, err := c.setupPlan(); err != nil {
		return nil, fmt.Errorf("node_daemon_setup: %w", err)
	}
	return c, nil
}

// Apply applies prepare-node-join's document, then node-daemon-setup's,
// each as its program does (internal/apply: plan again under the lock, one
// transaction, rollback). A failure of the first puts its files back; a
// failure of the second puts back its own and leaves the first's, as the
// two programs run one after the other by node-add do.
func (c *Checked) Apply(ctx context.Context) (*Results, error) {
	var res Results
	var err error
	if res.Prepare, err = apply.Run(ctx, c.cfg, c.log, c.prepPlan, false); err != nil {
		return nil, fmt.Errorf("prepare_node_join: %w", err)
	}
	res.Prepare.Program = "prepare-node-join"
	if res.DaemonSetup, err = apply.Run(ctx, c.cfg, c.log, c.setupPlan, false); err != nil {
		return &res, fmt.Errorf("node_daemon_setup: %w", err)
	}
	res.DaemonSetup.Program = "node-daemon-setup"
	return &res, nil
}
