// Package joinapi is join-service's wire protocol, shared by the master
// (join-service) and the node (node-join): the paths, the request and
// answer documents, the statuses, the error codes, the token that a
// booting machine is given (nodejoin.rendezvous=<uuid>:<host>[:<port>]:
// <secret>:sha256=<pin>) and the check of the master's certificate by its
// SPKI pin. It imports only the standard library. See doc/join-service.8.md.
package joinapi
