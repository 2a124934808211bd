// Package joinrecord is the record of what joining a cluster wrote on a
// node, kept so that node-cleanup can undo exactly that: every file and
// directory the join programs made, replaced or removed, what was there
// before (mode, owner, digest, and the backup that holds the old content),
// the digest of what they wrote, and the lines they added to files merged
// line by line (authorized_keys). The programs that keep a joined node's
// cluster files up to date (noded's ssconf update) add to it.
//
// The record is written in the same transaction as the files it
// describes, in the same write phases (its backups are named before they
// are made: txn.Tx.Stage), so it is never out of step with them and costs
// no journal write or round of fsyncs of its own; it holds digests of
// secrets, so it is a secret itself (0600, in the 0700 state directory).
package joinrecord

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"

	"github.com/nodejoin/nodejoin/internal/apply"
	"github.com/nodejoin/nodejoin/internal/node/nodestate"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/txn"
)

// Name is the record's file name in the state directory.
const Name = "join-record.json"

// Record is what the cluster's runs wrote on this node since it joined.
type Record struct {
	ClusterName string `json:"cluster_name"`
	// StateDirs are the levels of the state directory the first recorded
	// run made (node paths), which stay only for the record.
	StateDirs []string `json:"state_dirs,omitempty"`
	Files     []*File  `json:"files"`
	Dirs      []*Dir   `json:"dirs"`
}

// Meta is a mode and an owner.
type Meta struct {
	Mode fs.FileMode `json:"mode"`
	UID  int         `json:"uid"`
	GID  int         `json:"gid"`
}

// State is a file's mode, owner and content digest.
type State struct {
	Meta
	SHA256 string `json:"sha256"`
}

// Before is a file as it was before the cluster first wrote it.
type Before struct {
	State
	// Backup holds the old content (node path), where it differs from
	// what the cluster wrote; "" when only the mode or owner changed.
	Backup string `json:"backup,omitempty"`
}

// File is one file the cluster's runs wrote.
type File struct {
	Path   string  `json:"path"`
	Secret bool    `json:"secret,omitempty"`
	Before *Before `json:"before"` // nil: not there before the join
	Wrote  *State  `json:"wrote"`  // nil: the last run removed it
	// Backups are backups of the cluster's own content kept by later
	// runs (Ganeti keeps one per replaced key): made by the cluster,
	// removed with it.
	Backups []string `json:"backups,omitempty"`
	// Lines are the lines the cluster added to a merged file.
	Lines []string `json:"lines,omitempty"`
}

// Dir is one directory the cluster's runs made or changed.
type Dir struct {
	Path   string `json:"path"`
	Before *Meta  `json:"before"` // nil: made by the join
}

// NodePath is the record's node path on this node.
func NodePath(cfg *nodeconf.Config) string { return path.Join(cfg.StateDir, Name) }

// Read reads the node's record; nil if it has none. The record says what
// node-cleanup removes as root, so only a regular file of the running
// user that no one else can write is believed.
func Read(cfg *nodeconf.Config) (*Record, error) {
	np := NodePath(cfg)
	data, err := nodestate.ReadFile(cfg, np)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the join record: %w", err)
	}
	real, err := txn.Resolve(cfg.Root, np)
	if err != nil {
		return nil, err
	}
	fi, err := os.Lstat(real)
	if err != nil {
		return nil, fmt.Errorf("reading the join record: %w", err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != os.Geteuid() || fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("the join record %s is not the running user's alone (owner %d, mode %04o); it is not believed", np, st.Uid, fi.Mode().Perm())
	}
	r, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("the join record %s: %w", np, err)
	}
	return r, nil
}

// decode reads a record strictly: no unknown keys, nothing after it, and
// only clean paths and backups named as txn names them.
func decode(data []byte) (*Record, error) {
	var r Record
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("data after the record")
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	return &r, nil
}

func (r *Record) check() error {
	ok := func(p string) bool { return path.IsAbs(p) && path.Clean(p) == p && p != "/" }
	for _, f := range r.Files {
		if f == nil {
			return errors.New("an empty file entry")
		}
		if !ok(f.Path) {
			return fmt.Errorf("%q is not a clean absolute path", f.Path)
		}
		if f.Before != nil && f.Before.Backup != "" && !isBackupOf(f.Before.Backup, f.Path) {
			return fmt.Errorf("%q is not a backup of %s", f.Before.Backup, f.Path)
		}
		for _, b := range f.Backups {
			if !isBackupOf(b, f.Path) {
				return fmt.Errorf("%q is not a backup of %s", b, f.Path)
			}
		}
	}
	for _, d := range r.Dirs {
		if d == nil {
			return errors.New("an empty directory entry")
		}
		if !ok(d.Path) {
			return fmt.Errorf("%q is not a clean absolute path", d.Path)
		}
	}
	return nil
}

// isBackupOf says whether b is named as txn names backups of p, in p's
// directory: the record never makes node-cleanup remove anything else.
func isBackupOf(b, p string) bool {
	return path.Dir(b) == path.Dir(p) && strings.HasPrefix(path.Base(b), path.Base(p)+".backup-")
}

// FileOf returns the record of node path p, or nil.
func (r *Record) FileOf(p string) *File {
	for _, f := range r.Files {
		if f.Path == p {
			return f
		}
	}
	return nil
}

func (r *Record) dirOf(p string) *Dir {
	for _, d := range r.Dirs {
		if d.Path == p {
			return d
		}
	}
	return nil
}

// Planner wraps a plan so that what it writes is recorded in the same
// transaction. create says that the plan joins the node (prepare-node-join,
// node-daemon-setup, node-join): it starts a record where there is none;
// other plans only add to an existing one. A file the record does not know
// yet keeps its backup, so that node-cleanup can put its old content back.
func Planner(cfg *nodeconf.Config, clusterName string, inner apply.Planner, create bool) apply.Planner {
	return func() (*apply.Plan, error) {
		p, err := inner()
		if err != nil {
			return nil, err
		}
		rec, err := Read(cfg)
		if err != nil {
			return nil, err
		}
		if rec == nil && !create {
			return p, nil
		}
		fresh := rec == nil
		if fresh {
			rec = &Record{ClusterName: clusterName}
		}
		for i := range p.Items {
			if it := &p.Items[i]; !it.Dir && rec.FileOf(it.NodePath) == nil {
				it.KeepBackup = true
			}
		}
		inner := p.Record
		p.Record = func(tx *txn.Tx, changes []txn.Change) ([]txn.Change, error) {
			var more []txn.Change
			if inner != nil {
				var err error
				if more, err = inner(tx, changes); err != nil {
					return nil, err
				}
			}
			rc, err := change(cfg, rec, fresh, p.Merged, tx, changes)
			if err != nil {
				return nil, err
			}
			return append(more, rc...), nil
		}
		return p, nil
	}
}

// change adds what tx will do with changes to rec and returns the
// record's own change, which tx writes with them.
func change(cfg *nodeconf.Config, rec *Record, fresh bool, merged []string, tx *txn.Tx, changes []txn.Change) ([]txn.Change, error) {
	if fresh {
		for _, d := range tx.CreatedStateDirs() {
			rec.StateDirs = append(rec.StateDirs, nodePathOf(cfg, d))
		}
	}
	byPath := map[string]txn.Change{}
	for _, c := range changes {
		byPath[c.NodePath] = c
	}
	staged, err := tx.Stage(changes)
	if err != nil {
		return nil, err
	}
	for _, a := range staged {
		c := byPath[a.NodePath]
		if a.Dir {
			if rec.dirOf(a.NodePath) == nil && !c.Remove {
				d := &Dir{Path: a.NodePath}
				if a.Existed {
					d.Before = &Meta{Mode: a.Mode, UID: a.UID, GID: a.GID}
				}
				rec.Dirs = append(rec.Dirs, d)
			}
			continue
		}
		old := a.Old
		f := rec.FileOf(a.NodePath)
		if f == nil {
			f = &File{Path: a.NodePath, Secret: c.Secret}
			if a.Existed {
				f.Before = &Before{State: State{Meta: Meta{Mode: a.Mode, UID: a.UID, GID: a.GID}, SHA256: digest(old)}}
				if a.Kept {
					f.Before.Backup = a.Backup
				}
			}
			rec.Files = append(rec.Files, f)
		} else if a.Kept {
			f.Backups = append(f.Backups, a.Backup)
		}
		if slices.Contains(merged, a.NodePath) && !c.Remove {
			f.Lines = addedLines(f.Lines, old, c.Data)
		}
		f.Wrote = nil
		if !c.Remove {
			f.Wrote = &State{Meta: Meta{Mode: c.Mode, UID: c.UID, GID: c.GID}, SHA256: digest(c.Data)}
		}
	}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return nil, err
	}
	return txn.Diff(cfg.Root, []txn.Item{{NodePath: NodePath(cfg), Data: append(data, '\n'), Mode: 0o600,
		UID: os.Geteuid(), GID: os.Getegid(), Secret: true}})
}

// Lines splits a merged file into its lines, without line ends.
func Lines(data []byte) []string {
	var out []string
	for l := range strings.SplitSeq(strings.TrimSuffix(string(data), "\n"), "\n") {
		out = append(out, strings.TrimRight(l, "\r"))
	}
	if len(data) == 0 {
		return nil
	}
	return out
}

// addedLines is lines with those of now that were not in old appended.
func addedLines(lines []string, old, now []byte) []string {
	had := map[string]bool{}
	for _, l := range Lines(old) {
		had[l] = true
	}
	for _, l := range Lines(now) {
		if !had[l] && strings.TrimSpace(l) != "" && !slices.Contains(lines, l) {
			lines = append(lines, l)
		}
	}
	return lines
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Digest is the hex SHA-256 of b, as the record has it.
func Digest(b []byte) string { return digest(b) }

// nodePathOf is the node path of a real path under the root.
func nodePathOf(cfg *nodeconf.Config, real string) string {
	if cfg.Root == "/" {
		return real
	}
	return "/" + strings.TrimPrefix(strings.TrimPrefix(real, cfg.Root), "/")
}
