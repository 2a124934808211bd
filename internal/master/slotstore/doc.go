// Package slotstore keeps the rendezvous cache's slots (Matahari's boot-config
// cache: pre_register, update_cache, remove, remove_stale, assign_dynamic) and
// makes each of their operations atomic and exactly-once across every process
// that shares the store.
//
// The rules live once, in Store, over a small Backend of versioned keys with
// all-or-nothing compare-and-swap commits; two backends implement it: an
// embedded bbolt file (one writer) and etcd (several join-service replicas).
// See doc/slotstore.md.
package slotstore
