// Package join adds one node to the cluster from the master: it builds
// both documents from the master's state (lib/cluster), opens one SSH
// connection (lib/sshrun), runs prepare-node-join and node-daemon-setup as
// two sessions over it, checks their results, waits until the node daemon
// answers over TLS with the cluster certificate (lib/noded) and records the
// node on the master. A failure names the step, the remote exit status and
// the remote program's error lines; never key material.
package join
