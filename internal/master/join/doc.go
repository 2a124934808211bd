// Package join adds one node to the cluster from the master: it builds
// both documents from the master's state (internal/master/cluster), opens one SSH
// connection (internal/master/sshrun), runs prepare-node-join and node-daemon-setup as
// two sessions over it, checks their results, waits until the node daemon
// answers over TLS with the cluster certificate (internal/noded) and records the
// node on the master. A failure names the step, the remote exit status and
// the remote program's error lines; never key material.
package join
