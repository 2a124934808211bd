package renew

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nodejoin/nodejoin/internal/apply"
	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/master/join"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
	"github.com/nodejoin/nodejoin/internal/sshkeys"
	"github.com/nodejoin/nodejoin/internal/txn"
)

// Options of one run of cluster-renew.
type Options struct {
	Join join.Options // Cluster is the cluster renewed
	// NewHostKeys and NewHMACKey start a rotation of the SSH host keys,
	// the hmac key or both, when none is under way.
	NewHostKeys bool
	NewHMACKey  bool
	// NewClusterCertificate starts a rotation of the cluster certificate
	// (server.pem) and the master's client certificate.
	NewClusterCertificate bool
	// NewRootKeys starts a rotation of the master's root key pair, the
	// one nodes authorize; SSHUpdateProgram is ssh-update on the nodes,
	// which takes the old key out of their authorized_keys at the end.
	NewRootKeys      bool
	SSHUpdateProgram string
	// Window is how long both the old and the new keys are accepted,
	// from the start of the rotation.
	Window time.Duration
	// Finish closes the window at the end of this run, once every node
	// is on the new keys.
	Finish   bool
	Parallel int
	Log      *slog.Logger
	// Progress, if set, is told each node's result.
	Progress func(*join.Result)
}

// Report is what a run did.
type Report struct {
	Started   bool      `json:"started"` // this run started the rotation
	WindowEnd time.Time `json:"window_end"`
	// Renewed are the nodes this run brought onto the new keys; Pending
	// the recorded nodes not on them yet.
	Renewed []string `json:"renewed"`
	Pending []string `json:"pending"`
	// Closed says the window is closed: only the new keys are accepted.
	Closed bool `json:"closed"`
}

// Run starts or resumes the rotation and brings every recorded node onto
// the new keys; it closes the window when asked to (Finish) or when the
// window has ended, and only when no node is left on the old keys.
func Run(ctx context.Context, o Options) (*Report, error) {
	c := o.Join.Cluster
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rep := &Report{Renewed: []string{}, Pending: []string{}}
	r, err := c.Renewal()
	if err != nil {
		return nil, err
	}
	switch {
	case r == nil && !o.NewHostKeys && !o.NewHMACKey && !o.NewClusterCertificate && !o.NewRootKeys:
		if o.Finish {
			return nil, problem.Usagef("no rotation is under way: there is nothing to finish")
		}
		return nil, problem.Usagef("no rotation is under way; name what to renew: --new-host-keys, --new-hmac-key, --new-cluster-certificate, --new-root-keys")
	case r == nil:
		if r, err = stage(c, o.Window, what{hostKeys: o.NewHostKeys, hmac: o.NewHMACKey, certificate: o.NewClusterCertificate, rootKeys: o.NewRootKeys}); err != nil {
			return nil, err
		}
		rep.Started = true
		log.Info("rotation started", "window_end", r.WindowEnd.Format(time.RFC3339))
	default:
		log.Info("resuming the rotation", "started", r.Started.Format(time.RFC3339), "phase", r.Phase)
	}
	rep.WindowEnd = r.WindowEnd

	if r.Phase == cluster.RenewStaged {
		// The cluster known_hosts lists only the new keys from now on: the
		// old ones are accepted from a recorded node through the renewal
		// state while the window is open (cluster.WindowHostKeys), so that
		// they are refused once it ends even if no run closes it. The
		// master then takes the new keys, and every document it sends from
		// then on carries them.
		if len(r.NewHostKeys) > 0 {
			if err := c.SetKnownHostKeys(publics(r.NewHostKeys)); err != nil {
				return nil, fmt.Errorf("putting the new keys in the cluster known_hosts: %w", err)
			}
		}
		if err := installOnMaster(ctx, c, log, r); err != nil {
			return nil, err
		}
		for i := range r.NewHostKeys {
			r.NewHostKeys[i].Private = "" // the master's files hold them now
		}
		r.NewHMAC, r.NewServer = "", ""
		if r.NewRootKey != nil {
			r.NewRootKey.Private = ""
		}
		r.Phase = cluster.RenewNodes
		if err := c.SaveRenewal(r); err != nil {
			return nil, err
		}
	}

	// Nodes recorded while this pass ran (joins during the rotation) are
	// taken in the next; a pass that finds none ends the loop.
	failed := map[string]bool{}
	for {
		todo, err := pending(c)
		if err != nil {
			return nil, err
		}
		todo = slices.DeleteFunc(todo, func(n string) bool { return failed[n] })
		if len(todo) == 0 {
			break
		}
		var mu sync.Mutex
		join.Each(len(todo), o.Parallel, func(i int) {
			res := join.Join(ctx, o.Join, todo[i])
			mu.Lock()
			defer mu.Unlock()
			if o.Progress != nil {
				o.Progress(res)
			}
			if !res.OK {
				failed[res.Node] = true
				return
			}
			if err := c.MarkRenewed(res.Node); err != nil {
				failed[res.Node] = true
				log.Error("recording the node as renewed", "node", res.Node, "err", err)
				return
			}
			rep.Renewed = append(rep.Renewed, res.Node)
		})
	}
	if rep.Pending, err = pending(c); err != nil {
		return nil, err
	}
	slices.Sort(rep.Renewed)
	if len(rep.Pending) > 0 {
		return rep, problem.Hint(fmt.Errorf("%d recorded nodes are not on the new keys yet: %v", len(rep.Pending), rep.Pending),
			"the rotation is recorded; run cluster-renew again once they are reachable (before the window ends at "+
				r.WindowEnd.Format(time.RFC3339)+", after which their old key is refused: then pin it with node-add --host-key-fingerprint NODE=SHA256:...)")
	}
	if !o.Finish && time.Now().Before(r.WindowEnd) {
		return rep, nil
	}
	if r.RootKeys {
		if err := removeOldRootKey(ctx, o, r); err != nil {
			return rep, err
		}
	}
	if err := c.EndRenewal(); err != nil {
		return rep, err
	}
	if r.RootKeys {
		p := c.Config.Path(filepath.Join(c.Config.StateDir, cluster.OldRootKeyFile))
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return rep, err
		}
	}
	rep.Closed = true
	return rep, nil
}

// removeOldRootKey takes the master's old root key out of every recorded
// node's authorized_keys with ssh-update, each node recorded once done,
// in passes until one finds no node left (joins may record nodes
// meanwhile); a node it cannot reach keeps the rotation open.
func removeOldRootKey(ctx context.Context, o Options, r *cluster.Renewal) error {
	c := o.Join.Cluster
	prog := cmp.Or(o.SSHUpdateProgram, "ssh-update")
	doc := &joindoc.SSHUpdate{ClusterName: c.Settings.ClusterName,
		AuthorizedKeys: &joindoc.KeyAction{Action: joindoc.ActionRemove, Keys: joindoc.KeyMap{{Node: c.Settings.MasterNode, Keys: []string{r.OldRootKey}}}}}
	var mu sync.Mutex
	var failed []string
	done := slices.Clone(r.RootKeyRemoved)
	for {
		nodes, err := c.Nodes()
		if err != nil {
			return err
		}
		nodes = slices.DeleteFunc(nodes, func(n string) bool { return slices.Contains(done, n) || slices.Contains(failed, n) })
		if len(nodes) == 0 {
			break
		}
		join.Each(len(nodes), o.Parallel, func(i int) {
			err := join.SSHUpdate(ctx, o.Join, nodes[i], prog, doc)
			if err == nil {
				err = c.MarkRootKeyRemoved(nodes[i])
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, nodes[i])
				if o.Log != nil {
					o.Log.Error("taking the old root key out of the node's authorized_keys", "node", nodes[i], "err", err)
				}
				return
			}
			done = append(done, nodes[i])
		})
	}
	if len(failed) > 0 {
		slices.Sort(failed)
		return problem.Hint(fmt.Errorf("%d nodes still authorize the master's old root key: %v", len(failed), failed),
			"the window stays open; run cluster-renew --finish again once they are reachable")
	}
	return nil
}

// pending are the recorded nodes not yet on the new keys.
func pending(c *cluster.Cluster) ([]string, error) {
	r, err := c.Renewal()
	if err != nil || r == nil {
		return []string{}, err
	}
	nodes, err := c.Nodes()
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, n := range nodes {
		if !slices.Contains(r.Done, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// what a rotation renews.
type what struct{ hostKeys, hmac, certificate, rootKeys bool }

// stage makes what the rotation renews: a new key pair of each kind and
// size the master has, a new hmac key (as cluster-init makes it), a new
// cluster certificate with the proof of it by the old key, and records
// them, with the old public keys, before anything else changes.
func stage(c *cluster.Cluster, window time.Duration, w what) (*cluster.Renewal, error) {
	now := time.Now().UTC().Truncate(time.Second)
	r := &cluster.Renewal{Started: now, WindowEnd: now.Add(window), Phase: cluster.RenewStaged, Done: []string{}}
	if w.certificate {
		if err := stageCertificate(c, r); err != nil {
			return nil, err
		}
	}
	if w.rootKeys {
		if err := stageRootKey(c, r); err != nil {
			return nil, err
		}
	}
	hmac, hostKeys := w.hmac, w.hostKeys
	if hmac {
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
		r.HMAC, r.NewHMAC = true, hex.EncodeToString(secret)+"\n"
	}
	if !hostKeys {
		return r, c.SaveRenewal(r)
	}
	old, err := cluster.ReadHostKeys(c.Config)
	if err != nil {
		return nil, err
	}
	if len(old) == 0 {
		return nil, fmt.Errorf("the master has no SSH host keys in %s to renew", c.Config.Path(c.Config.SSHConfigDir))
	}
	for _, k := range old {
		pub, err := sshkeys.ParsePublicLine(k.Public)
		if err != nil {
			return nil, fmt.Errorf("the master's %s host key: %w", k.Kind, err)
		}
		priv, npub, err := sshkeys.Generate(sshkeys.Kind(k.Kind), sshkeys.Bits(pub), "root@"+c.Settings.MasterNode)
		if err != nil {
			return nil, fmt.Errorf("making a new %s host key: %w", k.Kind, err)
		}
		r.NewHostKeys = append(r.NewHostKeys, cluster.HostKeyPair{Kind: k.Kind, Private: string(priv), Public: string(npub)})
		r.OldHostKeys = append(r.OldHostKeys, k.Public)
	}
	return r, c.SaveRenewal(r)
}

// installOnMaster writes the new pairs over the master's host keys (the
// old ones kept as backups) and restarts its sshd, and writes the new
// hmac key, in one transaction: a failed check or restart puts the old
// files back.
func installOnMaster(ctx context.Context, c *cluster.Cluster, log *slog.Logger, r *cluster.Renewal) error {
	cfg := c.Config
	// The master's new client certificate, signed by the new cluster key:
	// made once, outside the planner, which apply.Run calls again.
	var client []byte
	var server *certs.KeyPair
	if r.Certificate && r.NewServer != "" {
		var err error
		if server, err = certs.ParseKeyPair([]byte(r.NewServer)); err != nil {
			return fmt.Errorf("the renewal state's new cluster certificate: %w", err)
		}
		if client, err = certs.NewClientCertificate(server, c.Settings.MasterNode, validity(c.Client.Cert)); err != nil {
			return fmt.Errorf("making the master's new client certificate: %w", err)
		}
	}
	plan := func() (*apply.Plan, error) {
		p := &apply.Plan{}
		if len(r.NewHostKeys) > 0 {
			p.Steps = []apply.Step{{Daemon: "sshd", Check: cfg.SSHDCheckCommand, Restart: cfg.SSHDRestartCommand}}
		}
		if r.HMAC {
			if r.NewHMAC == "" {
				return nil, fmt.Errorf("the renewal state has no hmac key for the master")
			}
			np := filepath.Join(cfg.DataDir, nodeconf.HMACKey)
			p.Items = append(p.Items, txn.Item{NodePath: np, Data: []byte(r.NewHMAC), Mode: cluster.ModeSecret,
				UID: os.Geteuid(), GID: os.Getegid(), KeepOwner: true, Secret: true})
		}
		if r.Certificate {
			if r.NewServer == "" || client == nil {
				return nil, fmt.Errorf("the renewal state has no new cluster certificate for the master")
			}
			secret := func(name string, data []byte) txn.Item {
				np := filepath.Join(cfg.DataDir, name)
				return txn.Item{NodePath: np, Data: data, Mode: cluster.ModeSecret,
					UID: os.Geteuid(), GID: os.Getegid(), KeepOwner: true, Secret: true}
			}
			p.Items = append(p.Items, secret(nodeconf.ServerPEM, []byte(r.NewServer)), secret(nodeconf.ClientPEM, client))
		}
		if r.RootKeys {
			items, err := rootKeyItems(c, r)
			if err != nil {
				return nil, err
			}
			p.Items = append(p.Items, items...)
		}
		for _, k := range r.NewHostKeys {
			if k.Private == "" {
				return nil, fmt.Errorf("the renewal state has no private %s key for the master", k.Kind)
			}
			base := filepath.Join(cfg.SSHConfigDir, cluster.HostKeyPrefix+k.Kind+"_key")
			item := func(np, data string, mode os.FileMode, secret bool) txn.Item {
				return txn.Item{NodePath: np, Data: []byte(data), Mode: mode,
					UID: os.Geteuid(), GID: os.Getegid(), KeepOwner: true, KeepBackup: true, Secret: secret}
			}
			p.Items = append(p.Items, item(base, k.Private, cluster.ModeSecret, true), item(base+".pub", k.Public, cluster.ModePublic, false))
		}
		return p, nil
	}
	if err := apply.Recover(ctx, cfg, log, false); err != nil {
		return err
	}
	// Under the master's lock: a node-add recording a node meanwhile
	// would write back ganeti_pub_keys with the master's old root key.
	if err := c.Locked(func() error {
		_, err := apply.Run(ctx, cfg, log, plan, false)
		return err
	}); err != nil {
		return fmt.Errorf("installing the new keys on the master: %w", err)
	}
	if server != nil {
		kp, err := certs.ParseKeyPair(client)
		if err != nil {
			return err
		}
		c.Server, c.Client = server, kp
	}
	return nil
}

// stageCertificate makes the new cluster certificate, for as long as the
// old one was made for, and the proof of it by the old key, valid until
// the window's end, and records them with the old certificate and the
// master's old client certificate.
func stageCertificate(c *cluster.Cluster, r *cluster.Renewal) error {
	newPEM, err := certs.NewRenewedClusterCertificate(c.Settings.ClusterName, validity(c.Server.Cert))
	if err != nil {
		return fmt.Errorf("making the new cluster certificate: %w", err)
	}
	renewed, err := certs.ParseKeyPair(newPEM)
	if err != nil {
		return err
	}
	proof, err := certs.NewRenewalProof(c.Server, renewed.Cert, r.WindowEnd)
	if err != nil {
		return err
	}
	r.Certificate = true
	r.NewServer = string(newPEM)
	r.OldCertificate = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Server.Cert.Raw}))
	r.OldClient = string(c.Client.PEM)
	r.CertificateProof = string(proof)
	return nil
}

// validity is how long cert was made for (cluster-init's
// --certificate-days), at least a day.
func validity(cert *x509.Certificate) time.Duration {
	return max(cert.NotAfter.Sub(cert.NotBefore)-time.Hour, 24*time.Hour)
}

func publics(keys []cluster.HostKeyPair) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.Public
	}
	return out
}

// stageRootKey makes a new root key pair of the master's type and size
// and records it with the old public key.
func stageRootKey(c *cluster.Cluster, r *cluster.Renewal) error {
	base, err := c.RootKeyPath()
	if err != nil {
		return err
	}
	old, err := os.ReadFile(c.Config.Path(base + ".pub"))
	if err != nil {
		return fmt.Errorf("reading the master's root public key: %w", err)
	}
	pub, err := sshkeys.ParsePublicLine(string(old))
	if err != nil {
		return fmt.Errorf("the master's root public key %s.pub: %w", base, err)
	}
	u, err := c.Config.LoginUser()
	if err != nil {
		return err
	}
	priv, npub, err := sshkeys.Generate(sshkeys.Kind(c.Settings.SSHKeyType), sshkeys.Bits(pub), u.Name+"@"+c.Settings.MasterNode)
	if err != nil {
		return fmt.Errorf("making a new root key pair: %w", err)
	}
	r.RootKeys = true
	r.NewRootKey = &cluster.HostKeyPair{Kind: c.Settings.SSHKeyType, Private: string(priv), Public: string(npub)}
	r.OldRootKey = strings.TrimSpace(string(old))
	return nil
}

// rootKeyItems write the new root key pair over the master's (the old
// one kept as backups), its public key as the master's line of
// ganeti_pub_keys (which the documents' authorized_keys come from), and
// the old private key where the master offers it from during the
// window (cluster.OldRootKeyFile), unless an earlier run already moved
// it there.
func rootKeyItems(c *cluster.Cluster, r *cluster.Renewal) ([]txn.Item, error) {
	if r.NewRootKey == nil || r.NewRootKey.Private == "" {
		return nil, fmt.Errorf("the renewal state has no new root key for the master")
	}
	cfg := c.Config
	u, err := cfg.LoginUser()
	if err != nil {
		return nil, err
	}
	base, err := c.RootKeyPath()
	if err != nil {
		return nil, err
	}
	file := func(np string, data []byte, mode os.FileMode, secret, backup bool) txn.Item {
		return txn.Item{NodePath: np, Data: data, Mode: mode, UID: u.UID, GID: u.GID, KeepOwner: true, KeepBackup: backup, Secret: secret}
	}
	// The old key's file comes first, so that ssh finds the old key in
	// one of the two files it is offered at every moment of the commit.
	var items []txn.Item
	cur, err := os.ReadFile(cfg.Path(base + ".pub"))
	if err != nil {
		return nil, fmt.Errorf("reading the master's root public key: %w", err)
	}
	if strings.TrimSpace(string(cur)) == r.OldRootKey {
		priv, err := os.ReadFile(cfg.Path(base))
		if err != nil {
			return nil, fmt.Errorf("reading the master's root key: %w", err)
		}
		items = append(items, file(filepath.Join(cfg.StateDir, cluster.OldRootKeyFile), priv, cluster.ModeSecret, true, false))
	}
	items = append(items,
		file(base, []byte(r.NewRootKey.Private), cluster.ModeSecret, true, true),
		file(base+".pub", []byte(r.NewRootKey.Public), cluster.ModePublic, false, true))
	np := filepath.Join(cfg.DataDir, nodeconf.PubKeys)
	b, err := os.ReadFile(cfg.Path(np))
	if err != nil {
		return nil, fmt.Errorf("reading the public key list: %w", err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if name, _, _ := strings.Cut(l, " "); name != c.Settings.MasterNode && l != "" {
			lines = append(lines, l)
		}
	}
	lines = append([]string{c.Settings.MasterNode + " " + strings.TrimSpace(r.NewRootKey.Public)}, lines...)
	items = append(items, txn.Item{NodePath: np, Data: []byte(strings.Join(lines, "\n") + "\n"), Mode: cluster.ModeSecret,
		UID: os.Geteuid(), GID: os.Getegid(), KeepOwner: true})
	return items, nil
}
