// Package clusterinit creates a master's cluster state in Ganeti's layout
// (cluster-init): it plans every file in memory, then writes them in one
// transaction. Only cluster-init links it; node-add reads the state through
// internal/master/cluster.
package clusterinit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nodejoin/nodejoin/internal/apply"
	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
	"github.com/nodejoin/nodejoin/internal/ssconf"
	"github.com/nodejoin/nodejoin/internal/sshkeys"
	"github.com/nodejoin/nodejoin/internal/txn"
	"github.com/nodejoin/nodejoin/internal/version"
)

// hintRenew names what renews an existing cluster's keys in place.
const hintRenew = "to renew this cluster's keys without stranding its nodes, run cluster-renew --new-host-keys --new-hmac-key --new-cluster-certificate"

// recordedNodes are the nodes of ssconf node_list but the cluster's master
// (ssconf master_node); none when there is no node_list.
func recordedNodes(cfg *nodeconf.Config) ([]string, error) {
	read := func(key string) (string, error) {
		v, err := ssconf.Read(cfg.Path(ssconf.Path(cfg.DataDir, key)))
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("reading ssconf %s: %w", key, err)
		}
		return v, nil
	}
	list, err := read("node_list")
	if err != nil {
		return nil, err
	}
	master, err := read("master_node")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range ssconf.Lines(list) {
		if n != master {
			out = append(out, n)
		}
	}
	return out, nil
}

// InitOptions describe a new cluster.
type InitOptions struct {
	Root           string
	ClusterName    string
	MasterNode     string // default: this host's name
	MasterIP       string // default: the master node's address, if it resolves
	MasterNetdev   string
	SSHKeyType     string // root key type for nodes and the master; default ed25519
	SSHKeyBits     int    // 0: the type's default
	NodeDaemonPort int    // default nodeconf.DefaultNodeDaemonPort
	CertValidity   time.Duration
	Force          bool // replace an existing cluster that has no recorded node but the master
}

// File is one file of a plan as the transaction compares it with the
// master's disk: what would be written, never its content.
type File struct {
	Path   string `json:"path"`   // node path
	Action string `json:"action"` // the transaction's: create, replace, chmod, unchanged
	Mode   string `json:"mode"`
	SHA256 string `json:"sha256,omitempty"` // empty for a secret: a digest would confirm a guess
	Secret bool   `json:"secret,omitempty"`
}

// InitPlan is what Init would do.
type InitPlan struct {
	cfg                 *nodeconf.Config
	items               []txn.Item        // the files, in the transaction's own model
	Settings            cluster.Settings  `json:"settings"`
	Files               []File            `json:"files"`
	HostKeyFingerprints map[string]string `json:"host_key_fingerprints"` // cluster SSH host keys
	RootKeyFingerprint  string            `json:"root_key_fingerprint"`
	CertFingerprint     string            `json:"certificate_fingerprint"`
}

// PlanInit checks the options and builds every file in memory; nothing is
// written.
func PlanInit(o InitOptions) (*InitPlan, error) {
	cfg, err := nodeconf.Load(o.Root)
	if err != nil {
		return nil, err
	}
	if err := cluster.CheckName(o.ClusterName); err != nil {
		return nil, problem.Reject("--cluster-name", "%v", err)
	}
	if o.MasterNode == "" {
		if o.MasterNode, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("finding this host's name: %w", err)
		}
	}
	if err := cluster.CheckName(o.MasterNode); err != nil {
		return nil, problem.Reject("--master-node", "%v", err)
	}
	if o.MasterIP == "" {
		if addrs, err := net.LookupHost(o.MasterNode); err == nil && len(addrs) > 0 {
			o.MasterIP = addrs[0]
		}
	} else if net.ParseIP(o.MasterIP) == nil {
		return nil, problem.Reject("--master-ip", "%q is not an IP address", o.MasterIP)
	}
	if o.SSHKeyType == "" {
		o.SSHKeyType = string(sshkeys.Ed25519)
	}
	kind := sshkeys.Kind(o.SSHKeyType)
	if kind != sshkeys.RSA && kind != sshkeys.ECDSA && kind != sshkeys.Ed25519 {
		return nil, problem.Reject("--ssh-key-type", "%q is not one of rsa, ecdsa, ed25519", o.SSHKeyType)
	}
	if o.SSHKeyBits == 0 {
		o.SSHKeyBits = sshkeys.DefaultBits(kind)
	}
	if err := sshkeys.CheckBits(kind, o.SSHKeyBits); err != nil {
		return nil, problem.Reject("--ssh-key-bits", "%v", err)
	}
	if o.NodeDaemonPort == 0 {
		o.NodeDaemonPort = nodeconf.DefaultNodeDaemonPort
	}
	if o.NodeDaemonPort < 1 || o.NodeDaemonPort > 65535 {
		return nil, problem.Reject("--node-daemon-port", "%d is not a port", o.NodeDaemonPort)
	}
	if o.CertValidity == 0 {
		o.CertValidity = 5 * 365 * 24 * time.Hour // Ganeti: 1825 days
	}
	if cluster.Exists(cfg) && !o.Force {
		return nil, problem.Reject(cluster.SettingsPath(cfg), "a cluster already exists on this master").
			WithHint(hintRenew,
				"--force makes another cluster here (new certificate and hmac key, the host keys kept), and only while no node is recorded: the nodes would refuse its certificate")
	}
	if o.Force {
		// Another cluster would strand every recorded node: each refuses
		// a certificate of another key (nodestate.CheckCertificate).
		nodes, err := recordedNodes(cfg)
		if err != nil {
			return nil, err
		}
		if len(nodes) > 0 {
			return nil, problem.Reject("--force", "this cluster has %d recorded nodes besides the master (%s): another cluster would strand them",
				len(nodes), strings.Join(nodes, ", ")).
				WithHint(hintRenew, "to make another cluster anyway, remove the nodes first (node-remove NODE)")
		}
	}

	p := &InitPlan{cfg: cfg, HostKeyFingerprints: map[string]string{}}
	p.Settings = cluster.Settings{ClusterName: strings.TrimSuffix(o.ClusterName, "."), MasterNode: o.MasterNode,
		SSHKeyType: o.SSHKeyType, SSHKeyBits: o.SSHKeyBits, NodeDaemonPort: o.NodeDaemonPort}
	add := func(nodePath string, b []byte, mode fs.FileMode, secret bool) {
		p.items = append(p.items, txn.Item{NodePath: nodePath, Data: b, Mode: mode,
			UID: os.Geteuid(), GID: os.Getegid(), KeepOwner: true, Secret: secret})
	}
	dataDir := func(name string) string { return filepath.Join(cfg.DataDir, name) }

	// The cluster certificate and the master's client certificate.
	serverPEM, err := certs.NewClusterCertificate(p.Settings.ClusterName, o.CertValidity)
	if err != nil {
		return nil, fmt.Errorf("creating the cluster certificate: %w", err)
	}
	server, err := certs.ParseKeyPair(serverPEM)
	if err != nil {
		return nil, fmt.Errorf("creating the cluster certificate: %w", err)
	}
	clientPEM, err := certs.NewClientCertificate(server, o.MasterNode, o.CertValidity)
	if err != nil {
		return nil, fmt.Errorf("creating the master's client certificate: %w", err)
	}
	client, err := certs.ParseKeyPair(clientPEM)
	if err != nil {
		return nil, fmt.Errorf("creating the master's client certificate: %w", err)
	}
	p.CertFingerprint = certs.Fingerprint(server.Cert)
	add(dataDir(nodeconf.ServerPEM), serverPEM, cluster.ModeSecret, true)
	add(dataDir(nodeconf.ClientPEM), clientPEM, cluster.ModeSecret, true)

	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	add(dataDir(nodeconf.HMACKey), []byte(hex.EncodeToString(secret)+"\n"), cluster.ModeSecret, true)

	// The cluster's SSH host keys: the master's own; ed25519 made if none.
	hostKeys, err := cluster.ReadHostKeys(cfg)
	if err != nil {
		return nil, err
	}
	if len(hostKeys) == 0 {
		priv, pub, err := sshkeys.Generate(sshkeys.Ed25519, 0, "root@"+o.MasterNode)
		if err != nil {
			return nil, fmt.Errorf("creating the cluster host key: %w", err)
		}
		hk := cluster.HostKeyPair{Kind: "ed25519", Private: string(priv), Public: string(pub)}
		hostKeys = append(hostKeys, hk)
		base := filepath.Join(cfg.SSHConfigDir, cluster.HostKeyPrefix+"ed25519_key")
		add(base, priv, cluster.ModeSecret, true)
		add(base+".pub", pub, cluster.ModePublic, false)
	}
	var kh strings.Builder
	for _, k := range hostKeys {
		hk, err := cluster.ParsePublic(k.Public)
		if err != nil {
			return nil, fmt.Errorf("%s host key: %w", k.Kind, err)
		}
		p.HostKeyFingerprints[k.Kind] = hk.Fingerprint()
		kh.WriteString(hk.Line(p.Settings.ClusterName) + "\n")
	}
	add(dataDir(nodeconf.KnownHosts), []byte(kh.String()), cluster.ModePublic, false)

	// Root's key pair: kept if root has one of the type, else made.
	user, err := cfg.LoginUser()
	if err != nil {
		return nil, err
	}
	keyBase := filepath.Join(user.Home, ".ssh", "id_"+o.SSHKeyType)
	rootPub, err := os.ReadFile(cfg.Path(keyBase + ".pub"))
	_, privErr := os.Stat(cfg.Path(keyBase))
	if err != nil || privErr != nil {
		priv, pub, err := sshkeys.Generate(kind, o.SSHKeyBits, user.Name+"@"+o.MasterNode)
		if err != nil {
			return nil, fmt.Errorf("creating root's key pair: %w", err)
		}
		add(keyBase, priv, cluster.ModeSecret, true)
		add(keyBase+".pub", pub, cluster.ModePublic, false)
		rootPub = pub
	}
	rk, err := cluster.ParsePublic(string(rootPub))
	if err != nil {
		return nil, fmt.Errorf("%s.pub: %w", keyBase, err)
	}
	p.RootKeyFingerprint = rk.Fingerprint()
	add(dataDir(nodeconf.PubKeys), []byte(o.MasterNode+" "+strings.TrimSpace(string(rootPub))+"\n"), cluster.ModeSecret, false)

	// ssconf, as far as known.
	values := map[string]string{
		"cluster_name":      p.Settings.ClusterName,
		"master_node":       o.MasterNode,
		"node_list":         o.MasterNode,
		"online_nodes":      o.MasterNode,
		"offline_nodes":     "",
		"master_candidates": o.MasterNode,
		// Nodes let only these certificates write (noded's PUT /ssconf).
		ssconf.CandidateCertsKey: o.MasterNode + "=" + certs.Digest(client.Cert),
		"release_version":        version.String(),
		"maintain_node_health":   "False",
		"enabled_user_shutdown":  "False",
	}
	if o.MasterIP != "" {
		values["master_ip"] = o.MasterIP
		values["node_primary_ips"] = o.MasterNode + " " + o.MasterIP
		values["master_candidates_ips"] = o.MasterIP
		family := 2
		if net.ParseIP(o.MasterIP).To4() == nil {
			family = 10
		}
		values["primary_ip_family"] = strconv.Itoa(family)
	}
	if o.MasterNetdev != "" {
		values["master_netdev"] = o.MasterNetdev
	}
	for _, k := range ssconf.Keys {
		if v, ok := values[k]; ok {
			add(ssconf.Path(cfg.DataDir, k), ssconf.Format(v), ssconf.FileMode, false)
		}
	}

	settings, _ := json.MarshalIndent(p.Settings, "", "  ")
	add(filepath.Join(cfg.StateDir, cluster.SettingsFile), append(settings, '\n'), cluster.ModePublic, false)

	// What each file would do is the transaction's own comparison, so a dry
	// run says what Apply does (a file of the same content but another mode
	// is "chmod", not "unchanged").
	changes, err := txn.Diff(cfg.Root, p.items)
	if err != nil {
		return nil, err
	}
	for _, c := range changes {
		p.Files = append(p.Files, File{Path: c.NodePath, Action: c.Action, Mode: fmt.Sprintf("%04o", c.Mode),
			SHA256: c.SHA256(), Secret: c.Secret})
	}
	return p, nil
}

// Apply writes the plan's files in one transaction (internal/txn), the settings
// file last: a cluster exists once it is written. A failure puts every file
// back.
func (p *InitPlan) Apply(ctx context.Context, log *slog.Logger) error {
	var items []txn.Item
	planned := map[string]bool{}
	for _, f := range p.items {
		mode := fs.FileMode(0o755)
		if filepath.Base(filepath.Dir(f.NodePath)) == ".ssh" {
			mode = 0o700
		}
		dirs, err := txn.MissingDirs(p.cfg.Root, filepath.Dir(f.NodePath), mode, os.Geteuid(), os.Getegid())
		if err != nil {
			return err
		}
		for _, d := range dirs {
			if !planned[d.NodePath] {
				planned[d.NodePath] = true
				items = append(items, d)
			}
		}
		items = append(items, f)
	}
	_, err := apply.Run(ctx, p.cfg, log, func() (*apply.Plan, error) { return &apply.Plan{Items: items}, nil }, false)
	return err
}
