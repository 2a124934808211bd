package sshupdate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/nodejoin/nodejoin/internal/apply"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/jsondoc"
	"github.com/nodejoin/nodejoin/internal/node/joinrecord"
	"github.com/nodejoin/nodejoin/internal/node/nodestate"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
	"github.com/nodejoin/nodejoin/internal/sshkeys"
	"github.com/nodejoin/nodejoin/internal/txn"
)

// pubKeysMode is the public key file's mode: Ganeti's WriteFile makes it
// with mkstemp's 0600 each time it rewrites it.
const pubKeysMode = 0o600

const hintDSA = "OpenSSH 9.8 removed DSA keys; use rsa, ecdsa or ed25519 (gnt-cluster renew-crypto --new-ssh-keys --ssh-key-type on a Ganeti master)"

// generated is the key pair a run's first plan made; the plan made again
// under the lock takes it, so a key is made once per run and never while
// the lock is held.
type generated struct {
	private, public []byte
}

// Planner plans the node from doc each time it is called (apply.Run). What
// it writes goes into the node's join record, if there is one, so that
// node-cleanup takes a rotation's keys for the cluster's, not the
// operator's.
func Planner(cfg *nodeconf.Config, doc *joindoc.SSHUpdate) apply.Planner {
	made := &generated{}
	return joinrecord.Planner(cfg, doc.ClusterName, func() (*apply.Plan, error) { return newPlan(cfg, doc, made) }, false)
}

// newPlan checks the document against the node and builds the plan; every
// check comes before any write, and a refusal is a *problem.RejectedError.
func newPlan(cfg *nodeconf.Config, doc *joindoc.SSHUpdate, made *generated) (*apply.Plan, error) {
	if err := nodestate.CheckClusterName(cfg, doc.ClusterName); err != nil {
		return nil, err
	}
	if doc.NodeDaemonCertificate != "" {
		if _, err := nodestate.CheckCertificateOnly(cfg, "/node_daemon_certificate", doc.NodeDaemonCertificate, doc.ClusterName, nil); err != nil {
			return nil, err
		}
	}
	rej := &problem.RejectedError{}
	auth := checkAction(rej, "/authorized_keys", doc.AuthorizedKeys)
	if auth != nil && auth.Action != joindoc.ActionAdd && auth.Action != joindoc.ActionRemove {
		rej.Problems = append(rej.Problems, problem.Problem{Where: "/authorized_keys/0",
			What: fmt.Sprintf("%q is not an action for authorized_keys: only add and remove are (as in Ganeti)", auth.Action)})
	}
	pubs := checkAction(rej, "/public_keys", doc.PublicKeys)
	gen := checkGenerate(cfg, rej, doc.Generate)
	if len(rej.Problems) > 0 {
		return nil, rej
	}

	p := &apply.Plan{}
	if pubs != nil {
		items, err := pubKeysItems(cfg, pubs)
		if err != nil {
			return nil, err
		}
		p.Items = append(p.Items, items...)
	}
	if auth == nil && gen == nil {
		return p, nil
	}
	u, err := cfg.LoginUser()
	if err != nil {
		return nil, err
	}
	sshDir := path.Join(u.Home, ".ssh")
	// ~/.ssh is made 0700 as Ganeti's GetAllUserFiles(mkdir=True) does.
	home, err := txn.MissingDirs(cfg.Root, u.Home, 0o700, u.UID, u.GID)
	if err != nil {
		return nil, err
	}
	p.Items = append(p.Items, home...)
	p.Items = append(p.Items, txn.Item{NodePath: sshDir, Dir: true, Mode: 0o700, UID: u.UID, GID: u.GID})

	var add, remove []string
	if auth != nil {
		for _, nk := range auth.Keys {
			if auth.Action == joindoc.ActionAdd {
				add = append(add, nk.Keys...)
			} else {
				remove = append(remove, nk.Keys...)
			}
		}
	}
	if gen != nil {
		if made.private == nil {
			host, _ := os.Hostname()
			priv, pub, err := sshkeys.Generate(sshkeys.Kind(gen.Type), gen.Bits, u.Name+"@"+host)
			if err != nil {
				return nil, fmt.Errorf("generating the %s key pair of %s: %w", gen.Type, u.Name, err)
			}
			*made = generated{private: priv, public: pub}
		}
		// Ganeti's InitSSHSetup backs up both files, and ssh-keygen makes
		// them 0600 and 0644.
		base := path.Join(sshDir, "id_"+gen.Type+gen.Suffix)
		file := func(np string, data []byte, mode fs.FileMode, secret bool) txn.Item {
			return txn.Item{NodePath: np, Data: data, Mode: mode,
				UID: u.UID, GID: u.GID, KeepOwner: true, KeepBackup: true, Secret: secret}
		}
		p.Items = append(p.Items, file(base, made.private, 0o600, true), file(base+".pub", made.public, 0o644, false))
		add = append(add, string(made.public))
		p.Result.RootPublicKey = strings.TrimSpace(string(made.public))
	}
	item, err := authorizedKeys(cfg, u, path.Join(sshDir, "authorized_keys"), add, remove)
	if err != nil {
		return nil, err
	}
	if item != nil {
		p.Items = append(p.Items, *item)
		p.Merged = append(p.Merged, item.NodePath)
	}
	return p, nil
}

// checkAction checks the key lines of an [action, keys] instruction: one
// line each, a public key. It returns the instruction with each line's
// trailing line break removed, or nil if there is none.
func checkAction(rej *problem.RejectedError, where string, a *joindoc.KeyAction) *joindoc.KeyAction {
	if a == nil {
		return nil
	}
	out := &joindoc.KeyAction{Action: a.Action}
	for _, nk := range a.Keys {
		keys := make([]string, 0, len(nk.Keys))
		for i, line := range nk.Keys {
			at := where + "/1/" + jsondoc.EscapePointer(nk.Node) + "/" + strconv.Itoa(i)
			line = strings.TrimRight(line, "\r\n")
			if strings.ContainsAny(line, "\r\n") {
				rej.Problems = append(rej.Problems, problem.Problem{Where: at, What: "a key line must not contain a line break"})
				continue
			}
			if _, err := sshkeys.ParsePublicLine(line); err != nil {
				rej.Problems = append(rej.Problems, problem.Problem{Where: at, What: "not a public key line"})
				continue
			}
			keys = append(keys, line)
		}
		out.Keys = append(out.Keys, joindoc.NodeKeys{Node: nk.Node, Keys: keys})
	}
	return out
}

// checkGenerate checks the kind and size of the key pair to generate; dsa
// only where the node's OpenSSH still has it.
func checkGenerate(cfg *nodeconf.Config, rej *problem.RejectedError, g *joindoc.GenerateKeys) *joindoc.GenerateKeys {
	if g == nil {
		return nil
	}
	kind := sshkeys.Kind(g.Type)
	if kind == sshkeys.DSA {
		if why := nodestate.DSARefusal(cfg); why != "" {
			rej.Problems = append(rej.Problems, problem.Problem{Where: "/generate/0", What: why})
			rej.Hints = append(rej.Hints, hintDSA)
			return nil
		}
	}
	if err := sshkeys.CheckBits(kind, g.Bits); err != nil {
		rej.Problems = append(rej.Problems, problem.Problem{Where: "/generate/1", What: err.Error()})
		return nil
	}
	return g
}

// pubKeysItems plans the public key file after a: the data directory if
// missing (Ganeti's ensure-dirs makes it 0755) and the file.
func pubKeysItems(cfg *nodeconf.Config, a *joindoc.KeyAction) ([]txn.Item, error) {
	np := path.Join(cfg.DataDir, nodeconf.PubKeys)
	var old []pubKey
	if needsOld(a.Action) {
		data, err := nodestate.ReadFile(cfg, np)
		switch {
		case err == nil:
			if old, err = parsePubKeys(np, data); err != nil {
				return nil, problem.Hint(err, "the file is not Ganeti's format; an override action rewrites it whole")
			}
		case errors.Is(err, txn.ErrOutsideRoot):
			return nil, err
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("reading %s: %w", np, err)
		}
	}
	items, err := txn.MissingDirs(cfg.Root, cfg.DataDir, 0o755, os.Geteuid(), os.Getegid())
	if err != nil {
		return nil, err
	}
	return append(items, txn.Item{NodePath: np, Data: renderPubKeys(applyPubKeys(old, a)),
		Mode: pubKeysMode, UID: os.Geteuid(), GID: os.Getegid()}), nil
}

// authorizedKeys plans the login user's authorized_keys with remove taken
// out and then add merged in, keeping every other line and the file's mode
// and owner; nil when there is nothing to change and no file to make.
func authorizedKeys(cfg *nodeconf.Config, u *nodeconf.User, np string, add, remove []string) (*txn.Item, error) {
	item := txn.Item{NodePath: np, Mode: 0o600, UID: u.UID, GID: u.GID, KeepOwner: true}
	old, err := nodestate.ReadFile(cfg, np)
	switch {
	case err == nil:
		real, err := txn.Resolve(cfg.Root, np)
		if err != nil {
			return nil, err
		}
		fi, err := os.Lstat(real)
		if err != nil {
			return nil, err
		}
		item.Mode = fi.Mode().Perm()
	case errors.Is(err, txn.ErrOutsideRoot):
		return nil, err
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("reading %s: %w", np, err)
	default:
		if len(add) == 0 {
			return nil, nil // nothing to remove from a file that is not there
		}
	}
	data, _ := sshkeys.RemoveAuthorized(old, remove)
	data, _ = sshkeys.MergeAuthorized(data, add)
	item.Data = data
	return &item, nil
}
