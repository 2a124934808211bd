// Package certs handles the cluster certificate and the node client
// certificates. The cluster certificate (server.pem: a private key and a
// self-signed certificate, as Ganeti's node daemon certificate) is the same on
// every node; each node also has a client certificate (client.pem: its own
// key and a certificate signed by the cluster key) that it presents when it
// calls another node's daemon. Mutual TLS between daemons trusts exactly the
// cluster certificate.
//
// Errors never contain key bytes: a server.pem travels in documents, and error
// texts end up in logs.
package certs
