package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nodejoin/nodejoin/internal/master/sshrun"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/ssconf"
	"github.com/nodejoin/nodejoin/internal/txn"
)

// RenewalFile is an unfinished key rotation's state (cluster-renew), in
// the state directory. It is written before each step's side effect, so a
// rerun knows where the rotation stands; it holds the new host keys'
// private halves until the master has them, so it is root's only (0600).
const RenewalFile = "renewal.json"

// Phases of a renewal, in order.
const (
	// RenewStaged: the new keys are made and recorded; the master's
	// known_hosts and its own host keys may or may not have them yet.
	RenewStaged = "staged"
	// RenewNodes: the master presents the new keys; the nodes are being
	// brought onto them.
	RenewNodes = "nodes"
)

// Renewal is a rotation of the cluster's SSH host keys, its hmac key, or
// both. For the host keys: from Started until
// WindowEnd both the old and the new keys are accepted from a recorded
// node (node-add, cluster-renew), so that joins running meanwhile never
// fail; after it only the new ones are.
type Renewal struct {
	Started   time.Time `json:"started"`
	WindowEnd time.Time `json:"window_end"`
	Phase     string    `json:"phase"`
	// NewHostKeys are the new pairs; the private halves are dropped once
	// the master's own files hold them.
	NewHostKeys []HostKeyPair `json:"new_host_keys"`
	// OldHostKeys are the public key lines the rotation replaces.
	OldHostKeys []string `json:"old_host_keys"`
	// NewHMAC is the new hmac.key, until the master's file holds it;
	// HMAC says the rotation renews the hmac key.
	HMAC    bool   `json:"hmac,omitempty"`
	NewHMAC string `json:"new_hmac,omitempty"`
	// Done are the nodes brought onto the new keys.
	Done []string `json:"done"`
	// Certificate says the rotation renews the cluster certificate:
	// NewServer is the new server.pem (key and certificate) until the
	// master's file holds it; OldCertificate the certificate it replaces
	// (PEM, certificate only); OldClient the master's client.pem it
	// replaces, presented to node daemons on the old certificate during
	// the window; CertificateProof the proof, made with the old key, that
	// nodes take the new one by (certs.NewRenewalProof).
	Certificate      bool   `json:"certificate,omitempty"`
	NewServer        string `json:"new_server,omitempty"`
	OldCertificate   string `json:"old_certificate,omitempty"`
	OldClient        string `json:"old_client,omitempty"`
	CertificateProof string `json:"certificate_proof,omitempty"`
	// RootKeys says the rotation renews the master's root key pair, the
	// one nodes authorize: NewRootKey is the new pair (its private half
	// dropped once the master's file holds it), OldRootKey the public key
	// line it replaces, and RootKeyRemoved the nodes whose
	// authorized_keys no longer lists that one (the rotation's end).
	RootKeys       bool         `json:"root_keys,omitempty"`
	NewRootKey     *HostKeyPair `json:"new_root_key,omitempty"`
	OldRootKey     string       `json:"old_root_key,omitempty"`
	RootKeyRemoved []string     `json:"root_key_removed,omitempty"`
}

// MarshalJSON is the default one: HostKeyPair has no tags.
func (k HostKeyPair) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"kind": k.Kind, "private": k.Private, "public": k.Public})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (k *HostKeyPair) UnmarshalJSON(b []byte) error {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	k.Kind, k.Private, k.Public = m["kind"], m["private"], m["public"]
	return nil
}

func renewalPath(cfg *nodeconf.Config) string {
	return cfg.Path(filepath.Join(cfg.StateDir, RenewalFile))
}

// Renewal returns the unfinished rotation, or nil if there is none.
func (c *Cluster) Renewal() (*Renewal, error) {
	b, err := os.ReadFile(renewalPath(c.Config))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the renewal state: %w", err)
	}
	var r Renewal
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", renewalPath(c.Config), err)
	}
	return &r, nil
}

// SaveRenewal writes r atomically (0600: it may hold private keys).
func (c *Cluster) SaveRenewal(r *Renewal) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	p := renewalPath(c.Config)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return txn.WriteFile(p, append(b, '\n'), ModeSecret)
}

// EndRenewal removes the rotation's state: the window is closed.
func (c *Cluster) EndRenewal() error {
	if err := os.Remove(renewalPath(c.Config)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the renewal state: %w", err)
	}
	return nil
}

// WindowHostKeys are the host keys a recorded node may present besides
// the master's own: the old keys of a rotation whose window is open at
// now, else none.
func (c *Cluster) WindowHostKeys(now time.Time) []sshrun.HostKey {
	r, err := c.Renewal()
	if err != nil || r == nil || !now.Before(r.WindowEnd) {
		return nil
	}
	var out []sshrun.HostKey
	for _, l := range r.OldHostKeys {
		if k, err := ParsePublic(l); err == nil {
			out = append(out, k)
		}
	}
	return out
}

// MarkRootKeyRemoved records under the master's lock that node's
// authorized_keys no longer lists the master's old root key.
func (c *Cluster) MarkRootKeyRemoved(node string) error {
	return c.markInRenewal(node, func(r *Renewal) *[]string { return &r.RootKeyRemoved })
}

// markInRenewal adds node to the renewal state's list that list picks,
// under the master's lock, once.
func (c *Cluster) markInRenewal(node string, list func(*Renewal) *[]string) error {
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	r, err := c.Renewal()
	if err != nil || r == nil {
		return err
	}
	l := list(r)
	if slices.Contains(*l, node) {
		return nil
	}
	*l = append(*l, node)
	return c.SaveRenewal(r)
}

// Nodes are the recorded nodes but the master (ssconf node_list).
func (c *Cluster) Nodes() ([]string, error) {
	values, err := c.ReadSsconf()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range ssconf.Lines(values["node_list"]) {
		if n != c.Settings.MasterNode {
			out = append(out, n)
		}
	}
	return out, nil
}

// MarkRenewed records under the master's lock that node is on the new
// keys, so that a rerun skips it.
func (c *Cluster) MarkRenewed(node string) error {
	return c.markInRenewal(node, func(r *Renewal) *[]string { return &r.Done })
}

// SetKnownHostKeys makes the cluster known_hosts' entries for the
// cluster name list exactly keys (public key lines): each key kept or
// added with the host names of the cluster's first entry, any other key
// of the cluster dropped. Lines for other hosts are kept as they are.
func (c *Cluster) SetKnownHostKeys(keys []string) error {
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	p := c.Path(nodeconf.KnownHosts)
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("reading the cluster known_hosts: %w", err)
	}
	want := map[string]bool{}
	for _, k := range keys {
		hk, err := ParsePublic(k)
		if err != nil {
			return err
		}
		want[hk.Type+" "+hk.Base64] = true
	}
	hosts := c.Settings.ClusterName
	have := map[string]bool{}
	var out []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && !strings.HasPrefix(f[0], "@") && !strings.HasPrefix(f[0], "#") &&
			slices.Contains(strings.Split(f[0], ","), c.Settings.ClusterName) {
			if hosts == c.Settings.ClusterName {
				hosts = f[0] // every cluster line names the same hosts (RecordNodes)
			}
			if !want[f[1]+" "+f[2]] {
				continue
			}
			have[f[1]+" "+f[2]] = true
		}
		if l != "" {
			out = append(out, l)
		}
	}
	for _, k := range keys {
		hk, _ := ParsePublic(k)
		if !have[hk.Type+" "+hk.Base64] {
			out = append(out, hosts+" "+hk.Type+" "+hk.Base64)
			have[hk.Type+" "+hk.Base64] = true
		}
	}
	data := []byte(strings.Join(out, "\n") + "\n")
	if string(data) == string(b) {
		return nil
	}
	return txn.WriteFile(p, data, ModePublic)
}
