// Package remove is node-remove's work: the node leaves the cluster on
// its side (node-cleanup over one SSH connection) and on the master's
// (its records, its join-service slots, its callback grant, the other
// nodes' ssconf).
package remove

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/master/callback"
	"github.com/nodejoin/nodejoin/internal/master/callbackstate"
	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/master/join"
	"github.com/nodejoin/nodejoin/internal/master/sshrun"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
)

// CleanupUsage is how an operator runs node-cleanup on a node by hand
// (node-cleanup(8), EXAMPLES), for the cluster named.
const CleanupUsage = `echo '{"cluster_name": "%s"}' | node-cleanup`

// Options are one removal's.
type Options struct {
	Cluster *cluster.Cluster
	SSH     sshrun.Config // Host is set to the node
	// Pins are fingerprints the node's host key may have besides the
	// cluster's, which a recorded node presents.
	Pins           []string
	CleanupProgram string   // node-cleanup's name or path on the node
	RemoteArgs     []string // e.g. --root DIR
	// Force does the master's side even when the node answered but could
	// not be cleaned (host key, login, node-cleanup refused or failed),
	// and for a name the master has not recorded.
	Force          bool
	DryRun         bool
	NodeDaemonPort int
	Parallel       int // ssconf pushes at a time
	Timeout        time.Duration
	// JoinServiceSocket is join-service's admin socket: the node's slots
	// are removed through it while join-service runs, else in its
	// embedded store (StoreDir) directly.
	JoinServiceSocket string
	StoreDir          string
	Callback          callback.Options
	Log               *slog.Logger
}

// Result is what node-remove did, printed as JSON.
type Result struct {
	Node   string `json:"node"`
	OK     bool   `json:"ok"`
	DryRun bool   `json:"dry_run"`
	// Reached says node-cleanup ran on the node; Cleanup is its result.
	Reached      bool            `json:"reached"`
	Cleanup      *joindoc.Result `json:"cleanup,omitempty"`
	CleanupError string          `json:"cleanup_error,omitempty"`
	// The master's side.
	Unrecorded      bool              `json:"unrecorded"`
	SlotsRemoved    []string          `json:"slots_removed,omitempty"`
	CallbackRevoked bool              `json:"callback_revoked"`
	SsconfPushed    []join.PushResult `json:"ssconf_pushed,omitempty"`
	Warnings        []string          `json:"warnings,omitempty"`
}

// Remove takes node out of the cluster. A refusal (the master, an unknown
// name without Force) changes nothing and is a *problem.RejectedError;
// a node that answers but could not be cleaned leaves the master as it
// was unless Force (an error naming the cause); a node that does not
// answer at all is removed on the master's side with a warning.
func Remove(ctx context.Context, o Options, node string) (*Result, error) {
	c := o.Cluster
	res := &Result{Node: node, DryRun: o.DryRun}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if err := cluster.CheckName(node); err != nil {
		return nil, problem.Reject("NODE", "%v", err)
	}
	if node == c.Settings.MasterNode {
		return nil, problem.Reject("NODE", "%s is the master; a master is not removed from its own cluster", node)
	}
	recorded, err := c.Recorded(node)
	if err != nil {
		return nil, err
	}
	if !recorded && !o.Force {
		return nil, problem.Reject("NODE", "%s is not a node of cluster %s (the master's node_list does not name it)", node, c.Settings.ClusterName).
			WithHint("--force removes what the master may still hold of it (join-service slots, a callback grant) and runs node-cleanup on it if it answers")
	}

	// The node first, while the master still trusts it and it the master.
	if err := cleanNode(ctx, o, node, recorded, res); err != nil {
		if !o.Force {
			return res, problem.Hint(fmt.Errorf("%s: %w; the master's records of it were left as they are", node, err),
				"fix the cause and run node-remove again, or run it with --force to remove the node on the master anyway (then run "+fmt.Sprintf(CleanupUsage, c.Settings.ClusterName)+" on the node)")
		}
		res.Warnings = append(res.Warnings, fmt.Sprintf("%v; removed on the master anyway (--force): run %s on the node", err, fmt.Sprintf(CleanupUsage, c.Settings.ClusterName)))
	}

	if err := masterSide(ctx, o, node, recorded, res); err != nil {
		return res, err
	}
	res.OK = true
	return res, nil
}

// down says the node did not answer at all: nothing can be done there.
func down(err error) bool {
	return errors.Is(err, sshrun.ErrUnreachable) || errors.Is(err, sshrun.ErrTimeout)
}

func cleanNode(ctx context.Context, o Options, node string, recorded bool, res *Result) error {
	c := o.Cluster
	prep, err := c.PrepareDoc()
	if err != nil {
		return err
	}
	cfg := o.SSH
	cfg.Host = node
	cfg.HostKeyFingerprints = o.Pins
	cfg.KnownHostsFiles = append(cfg.KnownHostsFiles, c.Path(nodeconf.KnownHosts))
	cfg.ClusterKeys = join.ClusterHostKeys(prep)
	cfg.TrustClusterKeys = recorded
	cfg.IdentityFiles = c.RootIdentities() // both root keys while one is rotated
	cfg.Log = o.Log
	// A node behind a machine callback is reached through its tunnel, as
	// node-add reaches it.
	st, err := callbackstate.Read(c.Config)
	if err != nil {
		return err
	}
	if g := st.Lookup(node); g != nil {
		cfg.Address, cfg.Port = join.TunnelHost, g.Port
	}
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	conn, err := sshrun.Dial(ctx, cfg)
	if err != nil && down(err) {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s does not answer (%v): it is removed on the master only; when it is back, run %s on it",
			node, err, fmt.Sprintf(CleanupUsage, c.Settings.ClusterName)))
		return nil
	}
	if err != nil {
		res.CleanupError = err.Error()
		return fmt.Errorf("connecting: %w", err)
	}
	defer func() { _ = conn.Close() }()
	doc, err := json.Marshal(joindoc.Cleanup{ClusterName: c.Settings.ClusterName})
	if err != nil {
		return err
	}
	argv := append([]string{o.CleanupProgram}, o.RemoteArgs...)
	if o.DryRun {
		argv = append(argv, "--dry-run")
	}
	r, err := conn.Run(ctx, argv, doc)
	if err != nil {
		res.CleanupError = err.Error()
		return fmt.Errorf("running %s: %w", o.CleanupProgram, err)
	}
	res.Reached = true
	if r.Status != 0 {
		msg := strings.TrimSpace(string(r.Stderr))
		res.CleanupError = fmt.Sprintf("%s exited %d: %s", o.CleanupProgram, r.Status, msg)
		if r.Status == 127 {
			return fmt.Errorf("%s is not on the login user's PATH on the node (install nodejoin-node there, or name it with --cleanup-program)", o.CleanupProgram)
		}
		return errors.New(res.CleanupError)
	}
	out, err := joindoc.DecodeResult(strings.NewReader(string(r.Stdout)))
	if err != nil {
		res.CleanupError = err.Error()
		return fmt.Errorf("%s printed no valid result: %w", o.CleanupProgram, err)
	}
	res.Cleanup = out
	for _, k := range out.Kept {
		res.Warnings = append(res.Warnings, fmt.Sprintf("kept on the node: %s (%s)", k.Path, k.Reason))
	}
	return nil
}

// masterSide removes the node from the master's records, its slots and
// its callback grant, and pushes ssconf to the remaining nodes.
func masterSide(ctx context.Context, o Options, node string, recorded bool, res *Result) error {
	c := o.Cluster
	st, err := callbackstate.Read(c.Config)
	if err != nil {
		return err
	}
	granted := st.Lookup(node) != nil
	if o.DryRun {
		res.Unrecorded, res.CallbackRevoked = recorded, granted
	}
	removed, warnings := removeSlots(ctx, o, node)
	res.SlotsRemoved, res.Warnings = removed, append(res.Warnings, warnings...)
	if o.DryRun {
		return nil
	}
	if recorded {
		if res.Unrecorded, err = c.UnrecordNode(node); err != nil {
			return fmt.Errorf("removing %s from the master's records: %w", node, err)
		}
	}
	if granted {
		if _, err := callback.Revoke(ctx, c.Config, o.Log, o.Callback, node, false); err != nil {
			return fmt.Errorf("revoking the callback grant of %s: %w", node, err)
		}
		res.CallbackRevoked = true
	}
	if res.Unrecorded {
		jo := join.Options{Cluster: c, NodeDaemonPort: o.NodeDaemonPort, Log: o.Log}
		pushed, err := join.PushSsconf(ctx, jo, max(o.Parallel, 1))
		if err != nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("updating the nodes' ssconf: %v", err))
		}
		res.SsconfPushed = pushed
		for _, p := range pushed {
			if p.Error != "" {
				res.Warnings = append(res.Warnings, fmt.Sprintf("%s: %s; it still lists %s until the next push", p.Node, p.Error, node))
			}
		}
	}
	return nil
}
