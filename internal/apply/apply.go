// Package apply carries out a plan of this machine's files: the node-side
// programs', noded's PUT /ssconf and cluster-init's on the master (a master
// is a Ganeti node too). It compares the wanted files with the machine, prints nothing and changes nothing on a dry
// run or when all is already so, and otherwise writes every file in one
// transaction, runs the checks and restarts, and rolls everything back if
// any step fails.
package apply

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nodejoin/nodejoin/internal/daemon"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
	"github.com/nodejoin/nodejoin/internal/txn"
)

// Step runs after the files are written, when anything changed: an
// optional check of the new files, then a restart.
type Step struct {
	Daemon  string         // name in reports, e.g. "sshd"
	Check   daemon.Command // e.g. sshd -t; the zero Command for none
	Restart daemon.Command
	// Stop says that Restart stops the daemon (node-cleanup): it is
	// reported as stopped, and a rollback runs Rollback instead (the
	// daemon's restart, so that it serves the old files again).
	Stop     bool
	Rollback []daemon.Command
}

// Plan is what a program wants the node to be.
type Plan struct {
	Items []txn.Item
	Steps []Step
	// Locks are lock files (node paths) held while writing, besides
	// nodejoin's own, e.g. Ganeti's ssconf lock.
	Locks []string
	// Result holds the facts the program reports besides the files
	// (e.g. the root public key); Run fills in the rest.
	Result joindoc.Result
	// Merged are the node paths of Items merged line by line with what
	// the node has (authorized_keys): the join record keeps the lines a
	// run added, not only the file's digest.
	Merged []string
	// Record, if set, runs in the transaction before the Items are
	// written: it returns more changes, written with the Items in the
	// same Apply and so in the same phases, and not reported (the join
	// record, made from what the transaction will do: tx.Stage). A
	// failure rolls the transaction back.
	Record func(tx *txn.Tx, changes []txn.Change) ([]txn.Change, error)
}

// LockFile is nodejoin's own lock, in a directory of the node's lock
// directory that only root can write (see txn.Options).
const LockFile = "nodejoin/nodejoin.lock"

// Options returns the transaction options of a node.
func Options(cfg *nodeconf.Config, log *slog.Logger) txn.Options {
	return txn.Options{
		StateDir: cfg.Path(cfg.StateDir),
		LockFile: cfg.Path(filepath.Join(cfg.LockDir, LockFile)),
		Log:      log,
		Restart:  func(ctx context.Context, c daemon.Command) error { return daemon.Run(ctx, log, c) },
	}
}

// Recover finishes an earlier run that was killed (see txn.Recover). A dry
// run only warns: it must write nothing.
func Recover(ctx context.Context, cfg *nodeconf.Config, log *slog.Logger, dryRun bool) error {
	opts := Options(cfg, log)
	if dryRun {
		st, err := txn.Pending(opts)
		if err != nil {
			return err
		}
		if st != nil {
			log.Warn("an interrupted run left a journal; the next real run rolls it back first, and this plan compares with the files as they are now")
			for _, s := range st.Pending {
				log.Warn("pending", "path", s.Path, "action", s.Action)
			}
		}
		return nil
	}
	return txn.Recover(ctx, opts)
}

// Planner plans the node from its files as they are at the time of the
// call. Run may call it twice, so it must read the node afresh each time.
type Planner func() (*Plan, error)

// Run plans, and when anything differs from the node, takes the locks,
// plans again and applies that second plan. The first look is taken
// without the lock so that a run that finds everything so takes no lock
// and writes nothing; but another run may change the files between that
// look and the lock, and a plan made before it would write over that run's
// work (a merged authorized key lost) or report a key that is not the one
// on disk. The result describes the plan applied, so it is true of the
// node when the run ends. The Locks of the first plan are taken.
func Run(ctx context.Context, cfg *nodeconf.Config, log *slog.Logger, plan Planner, dryRun bool) (joindoc.Result, error) {
	p, changes, err := diff(cfg.Root, plan)
	if err != nil {
		return joindoc.Result{}, err
	}
	if dryRun || !txn.Changed(changes) {
		return result(log, p, changes, dryRun), nil
	}
	for _, l := range p.Locks {
		f, err := lockFile(ctx, log, cfg.Path(l))
		if err != nil {
			return joindoc.Result{}, err
		}
		defer f.Close()
	}
	tx, err := txn.Begin(ctx, Options(cfg, log))
	if err != nil {
		return joindoc.Result{}, err
	}
	// Begin has finished any interrupted run and may have made the state
	// directory's parents, which the plan may want too.
	if p, changes, err = diff(cfg.Root, plan); err != nil {
		if rerr := tx.Rollback(ctx); rerr != nil {
			return joindoc.Result{}, fmt.Errorf("%w; ending the transaction: %w", err, rerr)
		}
		return joindoc.Result{}, err // a refusal stays a refusal: nothing was written
	}
	if !txn.Changed(changes) {
		// Another run made the node so while this one waited.
		return result(log, p, changes, false), tx.Commit()
	}
	all := changes
	if p.Record != nil {
		more, err := p.Record(tx, changes)
		if err != nil {
			return joindoc.Result{}, rollback(ctx, tx, err)
		}
		all = append(slices.Clip(changes), more...)
	}
	if err := tx.Apply(all); err != nil {
		return joindoc.Result{}, rollback(ctx, tx, err)
	}
	res := result(log, p, changes, false)
	for _, s := range p.Steps {
		if !s.Check.IsZero() {
			if err := daemon.Run(ctx, log, s.Check); err != nil {
				return joindoc.Result{}, rollback(ctx, tx, fmt.Errorf("checking %s's configuration with the new files: %w", s.Daemon, err))
			}
		}
		again := []daemon.Command{s.Restart}
		if s.Stop {
			again = s.Rollback
		}
		for _, c := range again {
			if err := tx.RecordRestart(c); err != nil {
				return joindoc.Result{}, rollback(ctx, tx, err)
			}
		}
		if err := daemon.Run(ctx, log, s.Restart); err != nil {
			verb := "restarting"
			if s.Stop {
				verb = "stopping"
			}
			return joindoc.Result{}, rollback(ctx, tx, fmt.Errorf("%s %s: %w", verb, s.Daemon, err))
		}
		switch {
		case s.Stop && !slices.Contains(res.Stopped, s.Daemon):
			res.Stopped = append(res.Stopped, s.Daemon)
		case !s.Stop && !slices.Contains(res.Restarted, s.Daemon): // a daemon may take several commands
			res.Restarted = append(res.Restarted, s.Daemon)
		}
	}
	return res, tx.Commit()
}

// diff plans and compares the plan with the node.
func diff(root string, plan Planner) (*Plan, []txn.Change, error) {
	p, err := plan()
	if err != nil {
		return nil, nil, err
	}
	changes, err := txn.Diff(root, p.Items)
	if err != nil {
		return nil, nil, err
	}
	return p, changes, nil
}

// result is p's facts with the changes, which it logs: a summary at info
// level, each item at debug level (an ssconf update has some fifteen
// files, most of them unchanged).
func result(log *slog.Logger, p *Plan, changes []txn.Change, dryRun bool) joindoc.Result {
	res := p.Result
	res.DryRun = dryRun
	res.Changed = txn.Changed(changes)
	res.Files = report(changes)
	res.Restarted = []string{}
	var changed []string
	for _, c := range changes {
		log.Debug("plan", "path", c.NodePath, "action", c.Action, "mode", fmt.Sprintf("%04o", c.Mode), "sha256", c.SHA256())
		if c.Action != txn.Unchanged {
			changed = append(changed, c.NodePath)
		}
	}
	log.Info("plan", "changed", len(changed), "unchanged", len(changes)-len(changed), "paths", strings.Join(changed, " "))
	return res
}

func rollback(ctx context.Context, tx *txn.Tx, cause error) error {
	if err := tx.Rollback(ctx); err != nil {
		return problem.Hint(fmt.Errorf("%w; putting the previous files back failed too: %w", cause, err),
			"the journal in the state directory records what is left (--status shows it); the next run of any nodejoin program on this node tries again")
	}
	return problem.Hint(fmt.Errorf("%w; the previous files were put back", cause),
		"nothing on the node changed; fix the cause and run again")
}

func report(changes []txn.Change) []joindoc.FileChange {
	out := make([]joindoc.FileChange, len(changes))
	for i, c := range changes {
		out[i] = joindoc.FileChange{Path: c.NodePath, Action: c.Action,
			Mode: fmt.Sprintf("%04o", c.Mode), SHA256: c.SHA256()}
	}
	return out
}

func lockFile(ctx context.Context, log *slog.Logger, path string) (*os.File, error) {
	f, err := txn.Lock(ctx, log, path)
	if err != nil {
		return nil, fmt.Errorf("taking %s: %w", strings.TrimPrefix(path, "/"), err)
	}
	return f, nil
}
