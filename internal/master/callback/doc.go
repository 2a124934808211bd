// Package callback is the master's side of the machine callback
// (callback-grant(8)): it gives a node a port of a configured range and lets
// the node's callback key open exactly one remote forward on it, through a
// restricted account on the master's sshd. Every grant is recorded in the
// master's state, under nodejoin's lock, so that a port is given once; the
// last revoke leaves the master's sshd configuration as it was before the
// first grant.
package callback
