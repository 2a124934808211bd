// Package joinservice is join-service's daemon: the rendezvous cache's
// HTTPS API for booting machines (fetch, status report, dynamic
// assignment, config long poll; internal/joinapi), the admin API on a
// root-only unix socket (add, list, show, remove, remove-stale,
// set-config), the audit log, and the recording of a joined node on the
// master as node-add does. Slots live in internal/master/slotstore.
// See doc/join-service.8.md.
package joinservice
