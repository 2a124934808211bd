// Package sslupdate plans ssl-update: Ganeti's ssl_update document, a new
// client certificate for the node signed by its cluster certificate
// (gnt-cluster renew-crypto --new-node-certificates), or the removal of
// that certificate and of the candidates' digests (a downgrade).
package sslupdate
