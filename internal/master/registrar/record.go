package registrar

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/nodejoin/nodejoin/internal/master/slotstore"
)

// State is a record's place in the registration.
type State string

// The states of the machine:
//
//	discovered → pending(parent) → registering → registered
//	                                           → failed (backoff) → registering
//	discovered | pending → blocked (unknown parent past the timeout, a cycle)
//	any → rejected (the admin), conflict (another host key for the name)
const (
	Discovered  State = "discovered"
	Pending     State = "pending"
	Blocked     State = "blocked"
	Registering State = "registering"
	Registered  State = "registered"
	Failed      State = "failed"
	Rejected    State = "rejected"
	Conflict    State = "conflict"
)

// Sources of a sighting.
const (
	SourceMDNS    = "mdns"
	SourceRequest = "request"
)

// How a record was accepted (Record.AcceptedBy).
const (
	ByAdmin       = "admin"
	ByWindow      = "install-window"
	ByExpectedKey = "expected-key"
	ByToken       = "token"
)

// Record is one machine asking to be registered, keyed by its name. It is
// written before every side effect: a registrar that dies between writing
// "registering" and issuing the slot finds the record and checks the slot
// instead of issuing a second.
type Record struct {
	Name    string `json:"name"`
	Role    string `json:"role"`
	Cluster string `json:"cluster,omitempty"`
	Parent  string `json:"parent,omitempty"`
	// HostKey is the SSH host key's fingerprint the record was made with;
	// ConflictKey the other one a later advert or request claimed.
	HostKey     string `json:"host_key"`
	ConflictKey string `json:"conflict_key,omitempty"`
	// HostKeyProven: a request carried the host key's signature of its
	// request, so the machine holds that key (the advert's hkfp is only a
	// claim).
	HostKeyProven bool `json:"host_key_proven,omitempty"`
	// SecretHash is the request secret's SHA-256 (hex), from the direct
	// request; the slot issued for the record carries it, so the machine
	// fetches with its own secret, which the master never sees.
	SecretHash string   `json:"secret_sha256,omitempty"`
	Sources    []string `json:"sources"`
	// AdvertAddr is the address the advert resolved to, RequestAddr the
	// address a request came from; Local: that request's address lay in a
	// subnet of the interface it arrived on (or in --subnet).
	AdvertAddr  string `json:"advert_addr,omitempty"`
	Interface   string `json:"interface,omitempty"`
	RequestAddr string `json:"request_addr,omitempty"`
	Local       bool   `json:"local,omitempty"`
	Token       bool   `json:"token,omitempty"` // the request carried a valid registration token
	Withdrawn   bool   `json:"withdrawn,omitempty"`
	AdvertState string `json:"advert_state,omitempty"` // ready, registered

	State      State  `json:"state"`
	Reason     string `json:"reason,omitempty"`
	AcceptedBy string `json:"accepted_by,omitempty"`
	// AdminAccepted: `requests accept NAME` (the record still waits for
	// its parent).
	AdminAccepted bool   `json:"admin_accepted,omitempty"`
	Slot          string `json:"slot,omitempty"`
	// Issued: the slot is in the store (written after it is issued, so
	// that a machine is told the slot only once it can fetch it).
	Issued   bool      `json:"issued,omitempty"`
	Attempts int       `json:"attempts,omitempty"`
	NextTry  time.Time `json:"next_try,omitzero"`
	First    time.Time `json:"first"`
	Seen     time.Time `json:"seen"`
	Changed  time.Time `json:"changed"`
}

const (
	recordPrefix = "registrar/request/"
	expectPrefix = "registrar/expect/"
	tokenPrefix  = "registrar/token/"
	windowKey    = "registrar/window"
)

func recordKey(name string) string { return recordPrefix + name }

func decodeRecord(it slotstore.Item) (*Record, error) {
	var r Record
	if err := json.Unmarshal(it.Value, &r); err != nil {
		return nil, fmt.Errorf("registration record %s: %w", it.Key, err)
	}
	return &r, nil
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // strings, bools, ints and times only
	}
	return b
}

func (r *Record) addSource(s string) {
	for _, x := range r.Sources {
		if x == s {
			return
		}
	}
	r.Sources = append(r.Sources, s)
}

// settled records take no further step by themselves.
func (r *Record) settled() bool {
	switch r.State {
	case Registered, Rejected, Conflict:
		return true
	}
	return false
}
