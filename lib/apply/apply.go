// Package apply carries out a node-side program's plan: it compares the
// wanted files with the node, prints nothing and changes nothing on a dry
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
	"strings"

	"github.com/nodejoin/nodejoin/lib/cli"
	"github.com/nodejoin/nodejoin/lib/daemon"
	"github.com/nodejoin/nodejoin/lib/joindoc"
	"github.com/nodejoin/nodejoin/lib/nodeconf"
	"github.com/nodejoin/nodejoin/lib/txn"
)

// Step runs after the files are written, when anything changed: an
// optional check of the new files, then a restart.
type Step struct {
	Daemon  string   // name in reports, e.g. "sshd"
	Check   []string // e.g. sshd -t; nil for none
	Restart []string
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
		Restart:  func(ctx context.Context, argv []string) error { return daemon.Run(ctx, log, argv) },
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

// Run applies p and fills res's Changed, Files and Restarted.
func Run(ctx context.Context, cfg *nodeconf.Config, log *slog.Logger, p Plan, dryRun bool, res *joindoc.Result) error {
	changes, err := txn.Diff(cfg.Root, p.Items)
	if err != nil {
		return err
	}
	res.DryRun = dryRun
	res.Changed = txn.Changed(changes)
	res.Files = report(changes)
	res.Restarted = []string{}
	for _, c := range changes {
		log.Info("plan", "path", c.NodePath, "action", c.Action, "mode", fmt.Sprintf("%04o", c.Mode), "sha256", c.SHA256())
	}
	if dryRun || !res.Changed {
		return nil
	}
	for _, l := range p.Locks {
		f, err := lockFile(ctx, log, cfg.Path(l))
		if err != nil {
			return err
		}
		defer f.Close()
	}
	tx, err := txn.Begin(ctx, Options(cfg, log))
	if err != nil {
		return err
	}
	// Compare again under the lock: Begin may have created the state
	// directory's parents, which the plan may want too.
	if changes, err = txn.Diff(cfg.Root, p.Items); err != nil {
		return rollback(ctx, tx, err, res)
	}
	if err := tx.Apply(changes); err != nil {
		return rollback(ctx, tx, err, res)
	}
	for _, s := range p.Steps {
		if s.Check != nil {
			if err := daemon.Run(ctx, log, s.Check); err != nil {
				return rollback(ctx, tx, fmt.Errorf("checking %s's configuration with the new files: %w", s.Daemon, err), res)
			}
		}
		if err := tx.RecordRestart(s.Restart); err != nil {
			return rollback(ctx, tx, err, res)
		}
		if err := daemon.Run(ctx, log, s.Restart); err != nil {
			return rollback(ctx, tx, fmt.Errorf("restarting %s: %w", s.Daemon, err), res)
		}
		res.Restarted = append(res.Restarted, s.Daemon)
	}
	return tx.Commit()
}

func rollback(ctx context.Context, tx *txn.Tx, cause error, res *joindoc.Result) error {
	res.Changed = false
	if err := tx.Rollback(ctx); err != nil {
		return cli.Hint(fmt.Errorf("%w; putting the previous files back failed too: %w", cause, err),
			"the journal in the state directory records what is left (--status shows it); the next run of any nodejoin program on this node tries again")
	}
	return cli.Hint(fmt.Errorf("%w; the previous files were put back", cause),
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
