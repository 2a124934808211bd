package sslupdate

import (
	"fmt"
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

// clientValidity is Ganeti's X509_CERT_DEFAULT_VALIDITY, 1825 days.
const clientValidity = 1825 * 24 * time.Hour

// certMode is client.pem's mode (Ganeti's GenerateSignedSslCert).
const certMode = 0o440

// Planner plans the node from doc each time it is called (apply.Run). The
// certificate its first plan made is kept for the plan made again under
// the lock: made once per run, never under the lock. What it writes goes
// into the node's join record, if there is one (as ssh-update's).
func Planner(cfg *nodeconf.Config, doc *joindoc.SSLUpdate) apply.Planner {
	var made []byte
	return joinrecord.Planner(cfg, doc.ClusterName, func() (*apply.Plan, error) { return newPlan(cfg, doc, &made) }, false)
}

// newPlan checks the document as Ganeti's tool does (the cluster name, then
// the master's server.pem: key and certificate that match each other and
// the node's own key) and plans the action. create makes a new certificate
// on every run, as Ganeti's does: renewing it is what it is for.
func newPlan(cfg *nodeconf.Config, doc *joindoc.SSLUpdate, made *[]byte) (*apply.Plan, error) {
	if err := nodestate.CheckClusterName(cfg, doc.ClusterName); err != nil {
		return nil, err
	}
	if _, err := nodestate.CheckServerPEM(cfg, "/node_daemon_certificate", doc.NodeDaemonCertificate, doc.ClusterName, nil); err != nil {
		return nil, err
	}
	clientNP := path.Join(cfg.DataDir, nodeconf.ClientPEM)
	p := &apply.Plan{Locks: []string{path.Join(cfg.LockDir, ssconf.LockFile)}}
	switch doc.Action {
	case joindoc.CryptoDelete:
		for _, np := range []string{clientNP, ssconf.Path(cfg.DataDir, ssconf.CandidateCertsKey)} {
			p.Items = append(p.Items, txn.Item{NodePath: np, Remove: true, Secret: np == clientNP})
		}
		return p, nil
	case joindoc.CryptoCreate:
	default:
		return nil, problem.Reject("/action", "%q is not an action: create or delete", doc.Action) // the schema has it
	}
	// Ganeti signs with the node's own server.pem, whose key is the one
	// just checked.
	local, err := nodestate.LocalKeyPair(cfg)
	if err != nil {
		return nil, err
	}
	if local == nil {
		return nil, problem.Reject("/action", "this node has no %s to sign a client certificate with",
			path.Join(cfg.DataDir, nodeconf.ServerPEM)).WithHint("node-daemon-setup installs it and makes client.pem")
	}
	if *made == nil {
		pem, err := certs.NewClientCertificateWithKey(local, doc.NodeName, clientValidity, cfg.ClientKey())
		if err != nil {
			return nil, fmt.Errorf("making the client certificate: %w", err)
		}
		*made = pem
	}
	kp, err := certs.ParseKeyPair(*made)
	if err != nil {
		return nil, fmt.Errorf("the new client certificate: %w", err)
	}
	p.Result.ClientCertificateFingerprint = certs.Fingerprint(kp.Cert)
	p.Items = append(p.Items, txn.Item{NodePath: clientNP, Data: *made, Mode: certMode,
		UID: os.Geteuid(), GID: os.Getegid(), KeepOwner: true, KeepBackup: true, Secret: true})
	return p, nil
}
