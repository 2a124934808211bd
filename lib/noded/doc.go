// Package noded is the reference node daemon's protocol: the HTTPS server
// that answers /version and /health over mutual TLS with the cluster
// certificate, the client that node-add uses to wait for it, and the
// process handling behind `noded --restart` (pid file, stop, detached start).
package noded
