package daemonsetup

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"time"

	"github.com/nodejoin/nodejoin/internal/apply"
	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/node/joinrecord"
	"github.com/nodejoin/nodejoin/internal/node/nodestate"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
	"github.com/nodejoin/nodejoin/internal/ssconf"
	"github.com/nodejoin/nodejoin/internal/txn"
)

// certMode is the mode of the data directory's secrets (Ganeti's NODED_CERT_MODE).
const certMode = 0o440

// clientValidity is Ganeti's X509_CERT_DEFAULT_VALIDITY, 1825 days.
const clientValidity = 1825 * 24 * time.Hour

// Planner plans the node from doc each time it is called (apply.Run). A
// client certificate its first plan made is kept for the plan made again
// under the lock, so it is made once per run and never under the lock.
// What it writes goes into the join record (node-cleanup undoes it).
func Planner(cfg *nodeconf.Config, doc *joindoc.DaemonSetup) apply.Planner {
	var made []byte
	return joinrecord.Planner(cfg, doc.ClusterName, func() (*apply.Plan, error) { return newPlan(cfg, doc, &made) }, true)
}

// newPlan checks the document against the node and builds the plan; every
// check comes before any write. made is a client certificate made by an
// earlier call, to reuse.
func newPlan(cfg *nodeconf.Config, doc *joindoc.DaemonSetup, made *[]byte) (*apply.Plan, error) {
	if err := nodestate.CheckClusterName(cfg, doc.ClusterName); err != nil {
		return nil, err
	}
	server, err := nodestate.CheckServerPEM(cfg, "/node_daemon_certificate", doc.NodeDaemonCertificate, doc.ClusterName, doc.CertificateRenewal)
	if err != nil {
		return nil, err
	}
	if problems := ssconf.Check("/ssconf", doc.ClusterName, doc.Ssconf); len(problems) > 0 {
		return nil, &problem.RejectedError{Problems: problems}
	}

	p := &apply.Plan{}
	// Each of these files holds a key: they are secrets.
	secret := func(np string, data []byte, uid, gid int, backup bool) {
		p.Items = append(p.Items, txn.Item{NodePath: np, Data: data, Mode: certMode,
			UID: uid, GID: gid, KeepOwner: true, KeepBackup: backup, Secret: true})
	}
	// Ganeti's tool gives hmac.key and server.pem to its masterd user and
	// group; client.pem keeps its owner (root), as there.
	uid, gid := os.Geteuid(), os.Getegid()
	masterdUID, masterdGID, ganeti, err := cfg.GanetiMasterd()
	if err != nil {
		return nil, err
	}
	if !ganeti {
		masterdUID, masterdGID = uid, gid
	}
	// Ganeti's ensure-dirs makes the data directory 0755.
	dirs, err := txn.MissingDirs(cfg.Root, cfg.DataDir, 0o755, os.Geteuid(), os.Getegid())
	if err != nil {
		return nil, err
	}
	p.Items = append(p.Items, dirs...)
	p.Items = append(p.Items, ssconf.Items(cfg, doc.Ssconf)...)
	secret(path.Join(cfg.DataDir, nodeconf.HMACKey), []byte(doc.HMACKey), masterdUID, masterdGID, false)
	secret(path.Join(cfg.DataDir, nodeconf.ServerPEM), []byte(doc.NodeDaemonCertificate), masterdUID, masterdGID, false)
	client, err := clientCertificate(cfg, server, doc.NodeName, made)
	if err != nil {
		return nil, err
	}
	secret(path.Join(cfg.DataDir, nodeconf.ClientPEM), client, uid, gid, true)
	kp, err := certs.ParseKeyPair(client)
	if err != nil {
		return nil, fmt.Errorf("the new client certificate: %w", err)
	}
	p.Result.ClientCertificateFingerprint = certs.Fingerprint(kp.Cert)
	// The master reaches the node daemon on the document's port: record it
	// where the node daemon reads its port (the restart below picks it up).
	if doc.NodeDaemonPort != 0 && doc.NodeDaemonPort != cfg.NodeDaemonPort {
		conf, err := cfg.FileWith("node_daemon_port", doc.NodeDaemonPort)
		if err != nil {
			return nil, err
		}
		dirs, err := txn.MissingDirs(cfg.Root, path.Dir(nodeconf.File), 0o755, os.Geteuid(), os.Getegid())
		if err != nil {
			return nil, err
		}
		p.Items = append(p.Items, dirs...)
		p.Items = append(p.Items, txn.Item{NodePath: nodeconf.File, Data: conf, Mode: 0o644,
			UID: os.Geteuid(), GID: os.Getegid(), KeepOwner: true, KeepBackup: true})
	}
	if doc.CertificateRenewal != nil {
		// The node daemon reads the window when it starts (nodedserver).
		b, err := json.Marshal(doc.CertificateRenewal)
		if err != nil {
			return nil, err
		}
		np := path.Join(cfg.StateDir, nodeconf.CertificateRenewal)
		p.Items = append(p.Items, txn.Item{NodePath: np, Data: append(b, '\n'), Mode: 0o644,
			UID: os.Geteuid(), GID: os.Getegid(), KeepOwner: true})
	}
	p.Locks = []string{path.Join(cfg.LockDir, ssconf.LockFile)}
	if doc.StartNodeDaemon {
		// Ganeti's sequence is three commands (nodeconf): each is a step
		// of its own, so that each is journaled and must succeed.
		for _, argv := range cfg.NodeDaemonRestartCommand {
			p.Steps = append(p.Steps, apply.Step{Daemon: "node daemon", Restart: argv})
		}
	}
	return p, nil
}

// clientCertificate keeps the node's client.pem when it is still valid for
// this cluster certificate and node name and its key is one to keep
// (nodeconf's ClientKeysKept: the configured one, Ganeti's RSA 2048 where
// Ganeti is installed, else ECDSA P-256 or RSA 2048), and otherwise takes made or, if none was
// made yet, makes a new one signed by the cluster certificate. Ganeti makes
// a new one every time.
func clientCertificate(cfg *nodeconf.Config, server *certs.KeyPair, nodeName string, made *[]byte) ([]byte, error) {
	np := path.Join(cfg.DataDir, nodeconf.ClientPEM)
	old, err := nodestate.ReadFile(cfg, np)
	if err == nil {
		for _, spec := range cfg.ClientKeysKept() {
			if certs.CheckClientCertificate(old, server, nodeName, spec, time.Now()) == nil {
				return old, nil
			}
		}
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading %s: %w", np, err)
	}
	if *made == nil {
		pem, err := certs.NewClientCertificateWithKey(server, nodeName, clientValidity, cfg.ClientKey())
		if err != nil {
			return nil, fmt.Errorf("making the client certificate: %w", err)
		}
		*made = pem
	}
	return *made, nil
}
