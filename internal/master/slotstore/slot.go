package slotstore

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on what an admin or a client can make the store keep.
const (
	MaxConfig     = 1 << 20 // the opaque config: a manifest, a script
	MaxParams     = 64
	MaxParamKey   = 128
	MaxParamValue = 1024
	MaxStatus     = 1024
	MaxAddr       = 256 // peer and claimed address
	MaxRootKey    = 16 << 10
	MaxNodeName   = 253 // a DNS name
	DefaultTTL    = time.Hour
)

// State is a slot's place in its life.
type State string

// A slot is free until its first use (a fetch, or the handing out of a
// dynamic slot), spent when no use is left, assigned in between.
const (
	Free     State = "free"
	Assigned State = "assigned"
	Spent    State = "spent"
)

// Slot is what the store returns about a slot. It never holds the secret
// nor its hash.
type Slot struct {
	UUID     string
	NodeName string // optional
	Params   map[string]string
	Dynamic  bool // a dynamic slot has no identity until it is assigned
	MaxUses  int  // 0: reusable until it expires
	Used     int
	State    State
	Created  time.Time
	Expires  time.Time
	Assigned time.Time // first use; zero while free
	LastSeen time.Time // last report; zero if never seen
	// PinnedKey is the node's root public key ("type base64") from its
	// first report; a later report with another key is refused.
	PinnedKey string
	// Closed is when a final report (the node joined) spent the slot
	// whatever uses it had left; zero if none came.
	Closed time.Time
	Report *Report // the last report, nil if never seen
	// Config and its revision; Get, Fetch and AssignDynamic fill them,
	// List leaves them empty.
	Config         []byte
	ConfigRevision int64
}

// Expired tells whether the slot's secret no longer admits a fetch.
func (s Slot) Expired(now time.Time) bool { return !now.Before(s.Expires) }

// Report is a node's status report (the seed's update_cache).
type Report struct {
	Status string
	Params map[string]string
	// Peer is the address the server saw the report come from; ClaimedAddr
	// is the node's own claim, a hint only (NAT, several interfaces).
	Peer        string
	ClaimedAddr string
	RootKey     string // authorized_keys form; the comment is dropped
	Time        time.Time
	// Keyless admits a report without RootKey (a node refused its
	// documents before it had a key): it pins nothing, and is refused
	// once a key is pinned.
	Keyless bool
	// Final: the node is done with the slot (it joined). A slot with a
	// use count gives up the uses it has left, so that its secret admits
	// no fetch after the join; a reusable slot stays reusable.
	Final bool
}

// NewSlot is the input of Add (the seed's pre_register).
type NewSlot struct {
	UUID     string // generated when empty
	NodeName string
	Config   []byte
	Params   map[string]string
	Dynamic  bool
	// Secret is generated when empty. The dynamic slots of one pool are
	// added with the pool's secret, which a booting machine presents.
	Secret   string
	Uses     int  // uses allowed; 0 means 1 (single use)
	Reusable bool // no limit on uses until the slot expires
	TTL      time.Duration

	// SecretHash, instead of Secret, is the hash (HashSecret) of a secret
	// the store never sees: an accepted registration request's.
	SecretHash string
}

// Added is Add's answer; Secret is returned this once and never stored.
type Added struct {
	Slot   Slot
	Secret string
}

// record is a slot as stored (JSON); its config is in a key of its own so
// that fetches and reports rewrite a few hundred bytes, not up to 1 MiB, and
// a config watcher wakes up for config changes only.
type record struct {
	UUID       string            `json:"uuid"`
	NodeName   string            `json:"node_name,omitempty"`
	Params     map[string]string `json:"params,omitempty"`
	Dynamic    bool              `json:"dynamic,omitempty"`
	SecretHash string            `json:"secret_sha256"`
	MaxUses    int               `json:"max_uses"`
	Used       int               `json:"used"`
	Created    time.Time         `json:"created"`
	Expires    time.Time         `json:"expires"`
	Assigned   time.Time         `json:"assigned,omitzero"`
	LastSeen   time.Time         `json:"last_seen,omitzero"`
	PinnedKey  string            `json:"pinned_key,omitempty"`
	Closed     time.Time         `json:"closed,omitzero"`
	Report     *storedReport     `json:"report,omitempty"`
	// Ops holds the ids of the last operations that wrote this record, so
	// that one whose commit had an unknown outcome can tell whether it
	// landed even if others wrote after it.
	Ops []string `json:"ops"`
}

type storedReport struct {
	Status      string            `json:"status"`
	Params      map[string]string `json:"params,omitempty"`
	Peer        string            `json:"peer"`
	ClaimedAddr string            `json:"claimed_addr,omitempty"`
	RootKey     string            `json:"root_key"`
	Time        time.Time         `json:"time"`
}

const keptOps = 16

func (r *record) did(op string) bool {
	for _, o := range r.Ops {
		if o == op {
			return true
		}
	}
	return false
}

func (r *record) addOp(op string) {
	r.Ops = append(r.Ops, op)
	if len(r.Ops) > keptOps {
		r.Ops = r.Ops[len(r.Ops)-keptOps:]
	}
}

func (r *record) state() State {
	switch {
	case r.Used == 0:
		return Free
	case r.MaxUses > 0 && (r.Used >= r.MaxUses || !r.Closed.IsZero()):
		return Spent
	default:
		return Assigned
	}
}

// lastActive is what remove-stale ages a slot by.
func (r *record) lastActive() time.Time {
	if !r.LastSeen.IsZero() {
		return r.LastSeen
	}
	return r.Created
}

func (r *record) slot() Slot {
	s := Slot{
		UUID: r.UUID, NodeName: r.NodeName, Params: r.Params, Dynamic: r.Dynamic,
		MaxUses: r.MaxUses, Used: r.Used, State: r.state(), Created: r.Created,
		Expires: r.Expires, Assigned: r.Assigned, LastSeen: r.LastSeen, PinnedKey: r.PinnedKey, Closed: r.Closed,
	}
	if p := r.Report; p != nil {
		s.Report = &Report{Status: p.Status, Params: p.Params, Peer: p.Peer, ClaimedAddr: p.ClaimedAddr, RootKey: p.RootKey, Time: p.Time}
	}
	return s
}

// CheckUUID accepts a UUID in its canonical text form (any case) and
// returns it in lower case, the form used as the key.
func CheckUUID(u string) (string, error) {
	u = strings.ToLower(u)
	if len(u) != 36 {
		return "", fmt.Errorf("%w: uuid: %q is not a UUID (8-4-4-4-12 hex digits)", ErrInvalid, clip(u))
	}
	for i, c := range []byte(u) {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return "", fmt.Errorf("%w: uuid: %q is not a UUID (8-4-4-4-12 hex digits)", ErrInvalid, u)
			}
		} else if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", fmt.Errorf("%w: uuid: %q is not a UUID (8-4-4-4-12 hex digits)", ErrInvalid, u)
		}
	}
	return u, nil
}

func checkNodeName(n string) error {
	if len(n) > MaxNodeName {
		return fmt.Errorf("%w: node_name: longer than %d characters", ErrInvalid, MaxNodeName)
	}
	for _, label := range strings.Split(n, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%w: node_name: %q is not a DNS name", ErrInvalid, clip(n))
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("%w: node_name: %q is not a DNS name", ErrInvalid, clip(n))
			}
		}
	}
	return nil
}

func checkText(where, s string, limit int) error {
	if len(s) > limit {
		return fmt.Errorf("%w: %s: %d bytes, at most %d", ErrInvalid, where, len(s), limit)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s: not UTF-8 text", ErrInvalid, where)
	}
	return nil
}

func checkParams(where string, m map[string]string) error {
	if len(m) > MaxParams {
		return fmt.Errorf("%w: %s: %d entries, at most %d", ErrInvalid, where, len(m), MaxParams)
	}
	for k, v := range m {
		if k == "" {
			return fmt.Errorf("%w: %s: empty key", ErrInvalid, where)
		}
		if err := checkText(where+" key", k, MaxParamKey); err != nil {
			return err
		}
		if err := checkText(where+"/"+k, v, MaxParamValue); err != nil {
			return err
		}
	}
	return nil
}

func checkConfig(c []byte) error {
	if len(c) > MaxConfig {
		return fmt.Errorf("%w: config: %d bytes, at most %d (1 MiB)", ErrInvalid, len(c), MaxConfig)
	}
	return nil
}

// normalRootKey keeps the "type base64" of an authorized_keys line, so that
// a changed comment is not a changed key.
func normalRootKey(k string) (string, error) {
	if k == "" {
		return "", fmt.Errorf("%w: report: root_key: missing", ErrInvalid)
	}
	if err := checkText("report: root_key", k, MaxRootKey); err != nil {
		return "", err
	}
	f := strings.Fields(k)
	if len(f) < 2 {
		return "", fmt.Errorf("%w: report: root_key: not an OpenSSH public key (\"type base64 [comment]\")", ErrInvalid)
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil || len(blob) < 4+len(f[0]) || string(blob[4:4+len(f[0])]) != f[0] {
		return "", fmt.Errorf("%w: report: root_key: key data does not match its type %q", ErrInvalid, clip(f[0]))
	}
	return f[0] + " " + f[1], nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
