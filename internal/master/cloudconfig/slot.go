package cloudconfig

import (
	"time"

	"github.com/nodejoin/nodejoin/internal/problem"
)

// Slot is what join-service's admin API says of the token's slot (slot
// show): the renderer asks the daemon rather than the store, which only
// the daemon may open, and never sees the secret there.
type Slot struct {
	UUID           string    `json:"uuid"`
	NodeName       string    `json:"node_name,omitempty"`
	State          string    `json:"state"` // free, assigned, spent
	Dynamic        bool      `json:"dynamic"`
	MaxUses        int       `json:"max_uses"`
	Used           int       `json:"used"`
	Expired        bool      `json:"expired"`
	Expires        time.Time `json:"expires"`
	ConfigRevision int64     `json:"config_revision,omitempty"`
	Config         *string   `json:"config,omitempty"`
}

// Check refuses a slot whose secret can no longer be used: spent, expired,
// or not the token's; and a config_exec for a slot with no config.
func (s Slot) Check(uuid string, in *Input) error {
	switch {
	case s.UUID != uuid:
		return problem.Reject("/token", "join-service answered for slot %s, not the token's %s", s.UUID, uuid)
	case s.State == "spent":
		return problem.Reject("/token", "slot %s is spent: its secret has no use left (used %d of %d)", uuid, s.Used, s.MaxUses).
			WithHint("issue a new slot (join-service slot add) and render again")
	case s.Expired:
		return problem.Reject("/token", "slot %s expired at %s: its secret admits no fetch", uuid, s.Expires.UTC().Format(time.RFC3339)).
			WithHint("issue a new slot (join-service slot add) with a ttl that covers the machine's first boot")
	case len(in.ConfigExec) > 0 && (s.Config == nil || *s.Config == ""):
		return problem.Reject("/config_exec", "slot %s has no config for it", uuid).
			WithHint("give the slot its config first: join-service slot set-config " + uuid + " < FILE")
	case in.NodeName != "" && s.NodeName != "" && in.NodeName != s.NodeName:
		return problem.Reject("/node_name", "%q is not slot %s's node %q", in.NodeName, uuid, s.NodeName)
	}
	return nil
}
