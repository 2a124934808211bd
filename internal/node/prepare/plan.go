package prepare

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"sort"
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

const hintDSA = "OpenSSH 9.8 removed DSA keys; use rsa, ecdsa or ed25519 (gnt-cluster renew-crypto --new-ssh-keys --ssh-key-type on a Ganeti master)"

// warnDSA follows a DSA key accepted because this node's OpenSSH still
// supports it.
const warnDSA = "a dsa key, accepted because this node's OpenSSH still supports ssh-dss; OpenSSH 7.0 disabled DSA and 9.8 removed it: move to rsa, ecdsa or ed25519"

type plan struct {
	apply.Plan
	cfg  *nodeconf.Config
	user *nodeconf.User
	// newPub holds planned public key files by node path, to report
	// fingerprints and keys as they will be.
	newPub map[string][]byte
	// dsaRefusal is why this node cannot use DSA keys ("" where it can);
	// dsaAsked says the node's OpenSSH was asked (once, and only for a
	// document with a DSA key).
	dsaRefusal string
	dsaAsked   bool
	made       *generated
	pairs      pairChecks
}

// generated is the root key pair a run's first plan generated. The plan
// made again under the lock takes it if the node still has no sound one,
// so a key is generated once per run and never while the lock is held.
type generated struct {
	kind         sshkeys.Kind
	bits         int
	private, pub []byte
}

// pairChecks are the key pairs a run's plans checked, by kind, private and
// public key, with ParsePair's answer: the plan made again under the lock
// checks the same pairs, and an RSA private key's check (Go validates the
// key, a pairwise test) is the largest part of a plan.
type pairChecks map[[3]string]pairCheck

type pairCheck struct {
	pair *sshkeys.Pair
	err  error
}

// parsePair is sshkeys.ParsePair; a test counts its calls.
var parsePair = sshkeys.ParsePair

// parse is ParsePair's answer for the pair, checked once per run.
func (c pairChecks) parse(kind sshkeys.Kind, private, public string) (*sshkeys.Pair, error) {
	k := [3]string{string(kind), private, public}
	r, ok := c[k]
	if !ok {
		r.pair, r.err = parsePair(kind, private, public)
		c[k] = r
	}
	return r.pair, r.err
}

// Planner plans the node from doc each time it is called (apply.Run);
// what it writes goes into the join record (node-cleanup undoes it).
func Planner(cfg *nodeconf.Config, doc *joindoc.Prepare) apply.Planner {
	made, pairs := &generated{}, pairChecks{}
	return joinrecord.Planner(cfg, doc.ClusterName, func() (*apply.Plan, error) { return newPlan(cfg, doc, made, pairs) }, true)
}

// newPlan checks the document against the node and builds the plan. Every
// check comes before any write; a refusal is a *problem.RejectedError.
func newPlan(cfg *nodeconf.Config, doc *joindoc.Prepare, made *generated, pairs pairChecks) (*apply.Plan, error) {
	if err := nodestate.CheckClusterName(cfg, doc.ClusterName); err != nil {
		return nil, err
	}
	if doc.NodeDaemonCertificate != "" {
		if _, err := nodestate.CheckCertificateOnly(cfg, "/node_daemon_certificate", doc.NodeDaemonCertificate, doc.ClusterName, doc.CertificateRenewal); err != nil {
			return nil, err
		}
	}
	u, err := cfg.LoginUser()
	if err != nil {
		return nil, err
	}
	p := &plan{cfg: cfg, user: u, newPub: map[string][]byte{}, made: made, pairs: pairs}
	p.Result.HostKeyFingerprints = map[string]string{}
	rej := &problem.RejectedError{}
	hostPairs := p.checkPairs(rej, "/ssh_host_key", doc.SSHHostKey)
	rootPairs := p.checkPairs(rej, "/ssh_root_key", doc.SSHRootKey)
	authorized := checkAuthorized(rej, doc.AuthorizedKeys)
	keyType, bits := p.checkKeyType(rej, doc)
	if len(rej.Problems) > 0 {
		return nil, rej
	}

	for _, k := range hostPairs {
		base := path.Join(cfg.SSHConfigDir, "ssh_host_"+k.Kind+"_key")
		// New host keys belong to the user running the program: root on a
		// real node. Ganeti backs up both files (WriteFile backup=True).
		p.addFile(base, []byte(k.Private), 0o600, os.Geteuid(), os.Getegid(), true, true)
		p.addFile(base+".pub", []byte(k.Public), 0o644, os.Geteuid(), os.Getegid(), true, false)
	}
	sshDir := path.Join(u.Home, ".ssh")
	var sshFiles []txn.Item
	for _, k := range rootPairs {
		sshFiles = append(sshFiles, p.userKeyItems(sshDir, k.Kind, []byte(k.Private), []byte(k.Public))...)
	}
	var rootPub string
	if keyType != "" {
		items, pub, err := p.rootKey(sshDir, keyType, bits, rootPairs)
		if err != nil {
			return nil, err
		}
		sshFiles = append(sshFiles, items...)
		rootPub = pub
	} else if len(rootPairs) > 0 {
		rootPub = rootPairs[0].Public
	}
	if rootPub != "" {
		authorized = append(authorized, rootPub)
	}
	if len(authorized) > 0 {
		item, err := p.authorizedKeys(sshDir, authorized)
		if err != nil {
			return nil, err
		}
		if item != nil {
			sshFiles = append(sshFiles, *item)
			p.Merged = append(p.Merged, item.NodePath)
		}
	}
	if len(sshFiles) > 0 {
		// A home directory missing under a test root is made as useradd
		// would; ~/.ssh is made 0700 like Ganeti's GetAllUserFiles does,
		// before the files in it.
		home, err := txn.MissingDirs(cfg.Root, u.Home, 0o700, u.UID, u.GID)
		if err != nil {
			return nil, err
		}
		p.Items = append(p.Items, home...)
		p.Items = append(p.Items, txn.Item{NodePath: sshDir, Dir: true,
			Mode: 0o700, UID: u.UID, GID: u.GID})
		p.Items = append(p.Items, sshFiles...)
	}
	if rootPub == "" {
		rootPub = p.existingRootPublicKey(sshDir)
	}
	p.Result.RootPublicKey = strings.TrimSpace(rootPub)
	p.fingerprints()
	p.Steps = []apply.Step{{Daemon: "sshd", Check: cfg.SSHDCheckCommand, Restart: cfg.SSHDRestartCommand}}
	return &p.Plan, nil
}

// checkPairs checks each [kind, private, public] triple: a supported kind,
// once each, a private key that parses and matches its public key.
func (p *plan) checkPairs(rej *problem.RejectedError, where string, list []joindoc.KeyTriple) []joindoc.KeyTriple {
	seen := map[string]bool{}
	var ok []joindoc.KeyTriple
	for i, k := range list {
		at := where + "/" + strconv.Itoa(i)
		switch {
		case k.Kind == string(sshkeys.DSA) && !p.dsa(rej, at+"/0"):
			continue
		case seen[k.Kind]:
			rej.Problems = append(rej.Problems, problem.Problem{Where: at + "/0", What: "a second " + k.Kind + " key"})
			continue
		}
		seen[k.Kind] = true
		if _, err := p.pairs.parse(sshkeys.Kind(k.Kind), k.Private, k.Public); err != nil {
			rej.Problems = append(rej.Problems, problem.Problem{Where: at, What: err.Error()})
			continue
		}
		ok = append(ok, k)
	}
	return ok
}

// dsa says whether a DSA key at where may be used: where this node's
// OpenSSH still supports ssh-dss (Ganeti 3.0 masters send DSA keys of
// clusters upgraded from 2.15 or older) it is, with a warning; elsewhere it
// is refused with the hint.
func (p *plan) dsa(rej *problem.RejectedError, where string) bool {
	if !p.dsaAsked {
		p.dsaAsked = true
		p.dsaRefusal = nodestate.DSARefusal(p.cfg)
	}
	if p.dsaRefusal == "" {
		p.Result.Warnings = append(p.Result.Warnings, where+": "+warnDSA)
		return true
	}
	rej.Problems = append(rej.Problems, problem.Problem{Where: where, What: p.dsaRefusal})
	rej.Hints = appendOnce(rej.Hints, hintDSA)
	return false
}

func checkAuthorized(rej *problem.RejectedError, m map[string][]string) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []string
	for _, id := range ids {
		for i, line := range m[id] {
			at := "/authorized_keys/" + jsondoc.EscapePointer(id) + "/" + strconv.Itoa(i)
			if strings.ContainsAny(strings.TrimRight(line, "\r\n"), "\r\n") {
				rej.Problems = append(rej.Problems, problem.Problem{Where: at, What: "a key line must not contain a line break"})
				continue
			}
			if _, err := sshkeys.ParsePublicLine(line); err != nil {
				rej.Problems = append(rej.Problems, problem.Problem{Where: at, What: "not a public key line"})
				continue
			}
			out = append(out, line)
		}
	}
	return out
}

func (p *plan) checkKeyType(rej *problem.RejectedError, doc *joindoc.Prepare) (sshkeys.Kind, int) {
	kind := sshkeys.Kind(doc.SSHKeyType)
	switch {
	case kind == "":
		return "", 0
	case kind == sshkeys.DSA && !p.dsa(rej, "/ssh_key_type"):
		return "", 0
	}
	bits := doc.SSHKeyBits
	if bits == 0 {
		bits = sshkeys.DefaultBits(kind)
	}
	if err := sshkeys.CheckBits(kind, bits); err != nil {
		rej.Problems = append(rej.Problems, problem.Problem{Where: "/ssh_key_bits", What: err.Error()})
		return "", 0
	}
	return kind, bits
}

func (p *plan) addFile(nodePath string, data []byte, mode fs.FileMode, uid, gid int, backup, secret bool) {
	p.Items = append(p.Items, txn.Item{NodePath: nodePath, Data: data,
		Mode: mode, UID: uid, GID: gid, KeepOwner: true, KeepBackup: backup, Secret: secret})
	if strings.HasSuffix(nodePath, ".pub") {
		p.newPub[nodePath] = data
	}
}

func (p *plan) userKeyItems(sshDir, kind string, private, public []byte) []txn.Item {
	base := path.Join(sshDir, "id_"+kind)
	p.newPub[base+".pub"] = public
	mk := func(np string, data []byte, mode fs.FileMode, secret bool) txn.Item {
		return txn.Item{NodePath: np, Data: data, Mode: mode,
			UID: p.user.UID, GID: p.user.GID, KeepOwner: true, KeepBackup: true, Secret: secret}
	}
	return []txn.Item{mk(base, private, 0o600, true), mk(base+".pub", public, 0o644, false)}
}

// rootKey keeps the login user's key pair of the requested kind and size if
// it is sound (Ganeti regenerates it on every run), and otherwise generates
// a new one on the node; the private key never leaves it.
func (p *plan) rootKey(sshDir string, kind sshkeys.Kind, bits int, given []joindoc.KeyTriple) ([]txn.Item, string, error) {
	for _, k := range given {
		if k.Kind == string(kind) {
			return nil, k.Public, nil // installed from the document
		}
	}
	base := path.Join(sshDir, "id_"+string(kind))
	priv, err1 := nodestate.ReadFile(p.cfg, base)
	pub, err2 := nodestate.ReadFile(p.cfg, base+".pub")
	if err1 == nil && err2 == nil {
		if pair, err := p.pairs.parse(kind, string(priv), string(pub)); err == nil && pair.Bits == bits {
			return p.userKeyItems(sshDir, string(kind), priv, pub), string(pub), nil
		}
	}
	if m := p.made; m.private == nil || m.kind != kind || m.bits != bits {
		host, _ := os.Hostname()
		priv, pub, err := sshkeys.Generate(kind, bits, p.user.Name+"@"+host)
		if err != nil {
			return nil, "", fmt.Errorf("generating the %s key pair of %s: %w", kind, p.user.Name, err)
		}
		*m = generated{kind: kind, bits: bits, private: priv, pub: pub}
	}
	return p.userKeyItems(sshDir, string(kind), p.made.private, p.made.pub), string(p.made.pub), nil
}

// authorizedKeys merges keys into the login user's authorized_keys,
// keeping every line already there and the file's mode and owner.
func (p *plan) authorizedKeys(sshDir string, keys []string) (*txn.Item, error) {
	np := path.Join(sshDir, "authorized_keys")
	item := txn.Item{NodePath: np, Mode: 0o600,
		UID: p.user.UID, GID: p.user.GID, KeepOwner: true}
	old, err := nodestate.ReadFile(p.cfg, np)
	switch {
	case err == nil:
		real, err := txn.Resolve(p.cfg.Root, np)
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
	}
	merged, _ := sshkeys.MergeAuthorized(old, keys)
	item.Data = merged
	return &item, nil
}

func (p *plan) existingRootPublicKey(sshDir string) string {
	for _, k := range sshkeys.RootKeyPreference {
		if data, err := nodestate.ReadFile(p.cfg, path.Join(sshDir, "id_"+string(k)+".pub")); err == nil {
			return string(data)
		}
	}
	return ""
}

// fingerprints reports each host key as sshd will present it.
func (p *plan) fingerprints() {
	for _, k := range sshkeys.HostKinds {
		np := path.Join(p.cfg.SSHConfigDir, "ssh_host_"+string(k)+"_key.pub")
		data, ok := p.newPub[np]
		if !ok {
			var err error
			if data, err = nodestate.ReadFile(p.cfg, np); err != nil {
				continue
			}
		}
		if pub, err := sshkeys.ParsePublicLine(string(data)); err == nil {
			p.Result.HostKeyFingerprints[string(k)] = sshkeys.Fingerprint(pub)
		}
	}
}

func appendOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
