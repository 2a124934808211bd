package cluster

import (
	"path/filepath"
)

// OldRootKeyFile is, in the state directory, the master's previous root
// private key during a rotation of it (cluster-renew --new-root-keys),
// 0600: the master offers it to the nodes not on the new key yet, and it
// is removed when the rotation ends.
const OldRootKeyFile = "root-key.old"

// RootKeyPath is the node path of the master's root private key, the one
// nodes authorize: the login user's ~/.ssh/id_<type> of the cluster's root
// key type (cluster-init).
func (c *Cluster) RootKeyPath() (string, error) {
	u, err := c.Config.LoginUser()
	if err != nil {
		return "", err
	}
	return filepath.Join(u.Home, ".ssh", "id_"+c.Settings.SSHKeyType), nil
}

// RootIdentities are the keys the master offers a node over SSH: during a
// rotation of its root key its key file and then the old key's (real
// paths; ssh skips one that is not there), so that nodes not on the new
// key yet are still reached whenever the master switches; nil otherwise
// (ssh's own defaults).
func (c *Cluster) RootIdentities() []string {
	r, err := c.Renewal()
	if err != nil || r == nil || !r.RootKeys {
		return nil
	}
	base, err := c.RootKeyPath()
	if err != nil {
		return nil
	}
	return []string{c.Config.Path(base), c.Config.Path(filepath.Join(c.Config.StateDir, OldRootKeyFile))}
}
