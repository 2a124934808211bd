// Package registrar is join-service's auto-registration, after Eucalyptus's
// (UEC): machines advertise "ready to be registered as NAME with parent P"
// (DNS-SD, browsed here through avahi or a Go mDNS client) or ask directly
// (POST /v1/register); each becomes one record keyed by its name, in a
// state machine persisted in the slot store's backend. An accepted record
// becomes a slot carrying the machine's own request secret (its hash), so
// the machine fetches its documents exactly as a slot's. See
// doc/design.md, "Auto-registration".
package registrar
