// Package prepare is prepare-node-join's plan: it checks the document
// against the node (cluster name, certificate, key pairs, DSA support) and
// plans the SSH host keys, the login user's keys and authorized_keys, then
// sshd's check and restart. prepare-node-join and node-join both apply it
// through internal/apply, so that they make the same checks, the same
// transaction and the same rollback.
package prepare
