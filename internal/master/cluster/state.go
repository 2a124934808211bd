package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/hostname"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/ssconf"
)

// Settings are the toolkit's own cluster settings, kept beside Ganeti's
// files in SettingsFile.
type Settings struct {
	ClusterName    string `json:"cluster_name"`
	MasterNode     string `json:"master_node"`
	SSHKeyType     string `json:"ssh_key_type"` // root key type for nodes
	SSHKeyBits     int    `json:"ssh_key_bits"`
	NodeDaemonPort int    `json:"node_daemon_port"`
}

// SettingsFile is the settings' node path under the state directory.
const SettingsFile = "cluster.json"

// Files of the master's own (the data directory's are nodeconf's).
const (
	masterLock    = "nodejoin-master.lock"
	HostKeyPrefix = "ssh_host_" // in the SSH config directory: ssh_host_<kind>_key
)

// Modes of the master's files.
const (
	ModeSecret = 0o600
	ModePublic = 0o644
)

// Cluster is an existing cluster's state on the master.
type Cluster struct {
	Config   *nodeconf.Config
	Settings Settings
	Server   *certs.KeyPair // server.pem: the cluster certificate and key
	Client   *certs.KeyPair // client.pem: the master's client certificate

	group recordGroup // RecordNode's groups (group.go)
}

// ErrNoCluster is returned by Open when the master has no cluster.
var ErrNoCluster = errors.New("no cluster on this master")

// CheckName refuses what is not a host or cluster name, by the rule the
// node-side documents' schemas assert (internal/hostname).
func CheckName(name string) error {
	if err := hostname.Check(name); err != nil {
		return fmt.Errorf("%q is not a valid host name: %w", name, err)
	}
	return nil
}

// data is the real path of a file in the data directory.
func data(cfg *nodeconf.Config, name string) string {
	return cfg.Path(filepath.Join(cfg.DataDir, name))
}

// Path is the real path of a file in the master's data directory.
func (c *Cluster) Path(name string) string { return data(c.Config, name) }

// SettingsPath is the real path of the cluster's settings file.
func SettingsPath(cfg *nodeconf.Config) string {
	return cfg.Path(filepath.Join(cfg.StateDir, SettingsFile))
}

// Exists says whether root holds a cluster (its settings or server.pem).
func Exists(cfg *nodeconf.Config) bool {
	for _, p := range []string{SettingsPath(cfg), data(cfg, nodeconf.ServerPEM)} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// Open reads the cluster state under root.
func Open(root string) (*Cluster, error) {
	cfg, err := nodeconf.Load(root)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Config: cfg}
	b, err := os.ReadFile(SettingsPath(cfg))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", SettingsPath(cfg), ErrNoCluster)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the cluster settings: %w", err)
	}
	if err := json.Unmarshal(b, &c.Settings); err != nil {
		return nil, fmt.Errorf("%s: %w", SettingsPath(cfg), err)
	}
	for _, f := range []struct {
		name string
		dst  **certs.KeyPair
	}{{nodeconf.ServerPEM, &c.Server}, {nodeconf.ClientPEM, &c.Client}} {
		b, err := os.ReadFile(c.Path(f.name))
		if err != nil {
			return nil, fmt.Errorf("reading the cluster state: %w", err)
		}
		if *f.dst, err = certs.ParseKeyPair(b); err != nil {
			return nil, fmt.Errorf("%s: %w", c.Path(f.name), err)
		}
	}
	return c, nil
}

// ReadSsconf returns every ssconf_* value in the data directory, as
// Ganeti's SimpleStore.ReadAll does (trailing newlines stripped).
func (c *Cluster) ReadSsconf() (map[string]string, error) {
	dir := c.Config.Path(c.Config.DataDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading ssconf: %w", err)
	}
	out := map[string]string{}
	for _, e := range entries {
		key, ok := strings.CutPrefix(e.Name(), "ssconf_")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		v, err := ssconf.Read(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading ssconf: %w", err)
		}
		out[key] = v
	}
	return out, nil
}

// niceSort sorts names as Ganeti's utils.NiceSort does: runs of digits
// compare as numbers, so node2 sorts before node10. The comparison walks
// both names in place, allocating nothing: join-service sorts lists of
// thousands of nodes at every fetch and record.
func niceSort(names []string) {
	sort.SliceStable(names, func(i, j int) bool { return niceLess(names[i], names[j]) })
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// run returns the run of digits or of other bytes that starts s[i:].
func run(s string, i int) string {
	d, j := isDigit(s[i]), i+1
	for j < len(s) && isDigit(s[j]) == d {
		j++
	}
	return s[i:j]
}

func niceLess(a, b string) bool {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		x, y := run(a, i), run(b, j)
		i, j = i+len(x), j+len(y)
		if x == y {
			continue
		}
		if isDigit(x[0]) && isDigit(y[0]) {
			tx, ty := strings.TrimLeft(x, "0"), strings.TrimLeft(y, "0")
			if len(tx) != len(ty) {
				return len(tx) < len(ty)
			}
			if tx != ty {
				return tx < ty
			}
			continue
		}
		return x < y
	}
	// The one with runs left is the greater, as with fewer chunks before.
	return i >= len(a) && j < len(b)
}
