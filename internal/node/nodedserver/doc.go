// Package nodedserver is the node side of the reference node daemon: the
// HTTPS server that answers /version and /health over mutual TLS with the
// cluster certificate and takes PUT /ssconf from the master, its connection
// limits, and the process handling behind `noded --restart` (pid file, stop,
// detached start). The protocol and the client are in internal/noded.
package nodedserver
