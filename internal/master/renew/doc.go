// Package renew rotates a cluster's SSH host keys, hmac key, certificate
// and the master's root key (cluster-renew) with a window in which a
// recorded node may present the old keys or the new:
// the new keys are made and recorded first, the master takes them, every
// recorded node is joined again with them (node-add's join, one SSH
// connection per node), and the window closes once every node is on them.
// Each step is recorded in the renewal state before its side effect, so a
// rerun after a kill or a failed node finishes the rotation.
package renew
