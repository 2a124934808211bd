// Package cleanup is node-cleanup's plan: undo, from the join record,
// exactly what joining the cluster wrote on this node, and keep what the
// operator changed since.
package cleanup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"

	"github.com/nodejoin/nodejoin/internal/apply"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/node/joinrecord"
	"github.com/nodejoin/nodejoin/internal/node/nodestate"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
	"github.com/nodejoin/nodejoin/internal/ssconf"
	"github.com/nodejoin/nodejoin/internal/txn"
)

const hintNoRecord = "the node joined before nodejoin kept a join record, or the record was removed: remove the cluster's files by hand (ssconf_*, hmac.key, server.pem, client.pem in the data directory; the cluster's host keys and root keys) or reinstall the node"

// Planner plans the node's leave from doc each time it is called.
func Planner(cfg *nodeconf.Config, doc *joindoc.Cleanup) apply.Planner {
	return func() (*apply.Plan, error) { return newPlan(cfg, doc) }
}

// file is what the node has at a path now.
type file struct {
	data []byte
	meta joinrecord.Meta
}

type plan struct {
	apply.Plan
	cfg *nodeconf.Config
	rej problem.RejectedError
	// gone are the node paths this plan removes, for the directories.
	gone     map[string]bool
	hostKeys bool // a host key changes: sshd is checked and restarted
}

func newPlan(cfg *nodeconf.Config, doc *joindoc.Cleanup) (*apply.Plan, error) {
	rec, err := joinrecord.Read(cfg)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		name := ssconf.Path(cfg.DataDir, "cluster_name")
		if _, err := nodestate.ReadFile(cfg, name); err == nil {
			return nil, problem.Reject(joinrecord.NodePath(cfg), "this node has cluster files (%s) but no join record that says what the join wrote", name).
				WithHint(hintNoRecord)
		}
		p := &apply.Plan{}
		p.Result.Warnings = []string{"this node has no join record: it has not joined a cluster; nothing to do"}
		return p, nil
	}
	if rec.ClusterName != doc.ClusterName {
		return nil, problem.Reject("/cluster_name", "%q is not the cluster this node joined (%q)", doc.ClusterName, rec.ClusterName)
	}
	p := &plan{cfg: cfg, gone: map[string]bool{}}
	for _, f := range rec.Files {
		cur, err := p.current(f.Path)
		if err != nil {
			return nil, err
		}
		if f.Lines != nil {
			p.merged(f, cur)
		} else {
			p.whole(f, cur)
		}
	}
	if len(p.rej.Problems) > 0 {
		return nil, &p.rej
	}
	p.remove(joinrecord.NodePath(cfg))
	for i := len(rec.Dirs) - 1; i >= 0; i-- {
		if err := p.dir(rec.Dirs[i]); err != nil {
			return nil, err
		}
	}
	levels := make([]string, len(rec.StateDirs))
	for i, d := range rec.StateDirs {
		levels[i] = cfg.Path(d)
	}
	p.Record = func(tx *txn.Tx, _ []txn.Change) ([]txn.Change, error) { return nil, tx.ReleaseStateDirs(levels) }
	if p.hostKeys {
		p.Steps = append(p.Steps, apply.Step{Daemon: "sshd", Check: cfg.SSHDCheckCommand, Restart: cfg.SSHDRestartCommand})
	}
	for _, argv := range cfg.NodeDaemonStopCommand {
		p.Steps = append(p.Steps, apply.Step{Daemon: "node daemon", Restart: argv, Stop: true, Rollback: cfg.NodeDaemonRestartCommand})
	}
	return &p.Plan, nil
}

// current reads what the node has at np; nil if nothing.
func (p *plan) current(np string) (*file, error) {
	data, err := nodestate.ReadFile(p.cfg, np)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", np, err)
	}
	real, err := txn.Resolve(p.cfg.Root, np)
	if err != nil {
		return nil, err
	}
	fi, err := os.Lstat(real)
	if err != nil {
		return nil, err
	}
	st := fi.Sys().(*syscall.Stat_t)
	return &file{data: data, meta: joinrecord.Meta{Mode: fi.Mode().Perm(), UID: int(st.Uid), GID: int(st.Gid)}}, nil
}

// asWritten says whether cur is what the cluster's last run left.
func asWritten(f *joinrecord.File, cur *file) bool {
	if f.Wrote == nil || cur == nil {
		return f.Wrote == nil && cur == nil
	}
	return cur.meta == f.Wrote.Meta && joinrecord.Digest(cur.data) == f.Wrote.SHA256
}

func (p *plan) keep(np, reason, backup string) {
	p.Result.Kept = append(p.Result.Kept, joindoc.Kept{Path: np, Reason: reason, Backup: backup})
}

func (p *plan) remove(np string) {
	p.Items = append(p.Items, txn.Item{NodePath: np, Remove: true})
	p.gone[np] = true
}

func (p *plan) write(f *joinrecord.File, data []byte, m joinrecord.Meta) {
	p.Items = append(p.Items, txn.Item{NodePath: f.Path, Data: data, Mode: m.Mode, UID: m.UID, GID: m.GID, Secret: f.Secret})
}

func (p *plan) touched(np string) {
	if path.Dir(np) == p.cfg.SSHConfigDir && strings.HasPrefix(path.Base(np), "ssh_host_") {
		p.hostKeys = true
	}
}

// backup reads the node's own content of f from its backup, checked
// against the digest the join recorded.
func (p *plan) backup(f *joinrecord.File) ([]byte, bool) {
	b := f.Before.Backup
	data, err := nodestate.ReadFile(p.cfg, b)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		p.rej.Problems = append(p.rej.Problems, problem.Problem{Where: b,
			What: "the backup of this node's own " + f.Path + " from before the join is gone, so it cannot be put back"})
	case err != nil:
		p.rej.Problems = append(p.rej.Problems, problem.Problem{Where: b, What: err.Error()})
	case joinrecord.Digest(data) != f.Before.SHA256:
		p.rej.Problems = append(p.rej.Problems, problem.Problem{Where: b,
			What: "the backup of this node's own " + f.Path + " changed since the join, so it cannot be trusted to put it back"})
	default:
		return data, true
	}
	p.rej.Hints = appendOnce(p.rej.Hints, "put the backup back as it was, or replace "+f.Path+" with the node's own file yourself (node-cleanup then keeps it as the operator's); then run node-cleanup again")
	return nil, false
}

// restore puts f back as it was before the join, cur being as the
// cluster left it.
func (p *plan) restore(f *joinrecord.File, cur *file) {
	switch {
	case f.Before == nil:
		if cur != nil {
			p.remove(f.Path)
			p.touched(f.Path)
		}
	case f.Before.Backup == "":
		// The join changed the mode or owner only.
		if cur == nil || joinrecord.Digest(cur.data) != f.Before.SHA256 {
			p.rej.Problems = append(p.rej.Problems, problem.Problem{Where: f.Path,
				What: "the join record keeps no backup of this node's own content"})
			return
		}
		p.write(f, cur.data, f.Before.Meta)
		p.touched(f.Path)
	default:
		data, ok := p.backup(f)
		if !ok {
			return
		}
		p.write(f, data, f.Before.Meta)
		p.remove(f.Before.Backup)
		p.touched(f.Path)
	}
}

// whole undoes a file the cluster wrote whole: put back if it is as the
// cluster left it, else kept (with the node's own content's backup).
func (p *plan) whole(f *joinrecord.File, cur *file) {
	if !asWritten(f, cur) {
		reason := "changed since the join"
		if cur == nil {
			reason = "removed since the join"
		}
		backup := ""
		if f.Before != nil {
			backup = f.Before.Backup
		}
		p.keep(f.Path, reason, backup)
		return
	}
	p.restore(f, cur)
	p.removeBackups(f)
}

// merged undoes a file merged line by line (authorized_keys): put back
// whole if it is as the cluster left it; else only the lines the cluster
// added are taken out, and every other line is kept.
func (p *plan) merged(f *joinrecord.File, cur *file) {
	if asWritten(f, cur) {
		p.restore(f, cur)
		p.removeBackups(f)
		return
	}
	if cur == nil {
		p.keep(f.Path, "removed since the join", "")
		return
	}
	var out []string
	for _, l := range joinrecord.Lines(cur.data) {
		if !slices.Contains(f.Lines, l) {
			out = append(out, l)
		}
	}
	kept := 0
	for _, l := range out {
		if strings.TrimSpace(l) != "" {
			kept++
		}
	}
	switch {
	case kept == 0 && f.Before == nil:
		p.remove(f.Path)
	default:
		data := []byte(strings.Join(out, "\n"))
		if len(out) > 0 {
			data = append(data, '\n')
		}
		p.write(f, data, cur.meta)
	}
	p.keep(f.Path, fmt.Sprintf("changed since the join: the cluster's %d lines are taken out, the %d others kept", len(f.Lines), kept), "")
	if f.Before != nil && f.Before.Backup != "" {
		p.remove(f.Before.Backup)
	}
	p.removeBackups(f)
}

// removeBackups removes the backups of the cluster's own content.
func (p *plan) removeBackups(f *joinrecord.File) {
	for _, b := range f.Backups {
		p.remove(b)
	}
}

// dir removes a directory the join made, if nothing is left in it but
// what this plan removes, or puts back the mode and owner of one it
// changed.
func (p *plan) dir(d *joinrecord.Dir) error {
	real, err := txn.Resolve(p.cfg.Root, d.Path)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(real)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		p.keep(d.Path, "no longer a directory", "")
		return nil
	}
	if d.Before != nil {
		p.Items = append(p.Items, txn.Item{NodePath: d.Path, Dir: true, Mode: d.Before.Mode, UID: d.Before.UID, GID: d.Before.GID})
		return nil
	}
	entries, err := os.ReadDir(real)
	if err != nil {
		return err
	}
	var others []string
	for _, e := range entries {
		if !p.gone[path.Join(d.Path, e.Name())] {
			others = append(others, e.Name())
		}
	}
	if len(others) > 0 {
		p.keep(d.Path, "made by the join, but holds what the cluster did not write: "+strings.Join(others, " "), "")
		return nil
	}
	p.Items = append(p.Items, txn.Item{NodePath: d.Path, Dir: true, Remove: true})
	p.gone[d.Path] = true
	return nil
}

func appendOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
