// Package daemonsetup is node-daemon-setup's plan: it checks the document
// against the node and plans the ssconf files, hmac.key, server.pem, a
// client certificate and the node daemon's restart. node-daemon-setup and
// node-join both apply it through internal/apply, so that they make the
// same checks, the same transaction and the same rollback.
package daemonsetup
