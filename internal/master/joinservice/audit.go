package joinservice

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// Audit writes one JSON line per event: every issue, fetch, assignment,
// report, config poll, admin change and refusal. It is given slot ids,
// peers and outcomes, never a secret nor a document.
type Audit struct {
	mu  sync.Mutex
	out []io.Writer
	now func() time.Time
}

// NewAudit writes to every w (a file, standard error).
func NewAudit(w ...io.Writer) *Audit { return &Audit{out: w, now: time.Now} }

// Event is one line of the audit log.
type Event struct {
	Time    string `json:"time"`
	Event   string `json:"event"` // issue, fetch, assign, report, config, record, push, remove, remove-stale, set-config
	Slot    string `json:"slot,omitempty"`
	Peer    string `json:"peer,omitempty"`
	Outcome string `json:"outcome"`          // ok, refused, failed
	Reason  string `json:"reason,omitempty"` // why it was refused or failed
	Node    string `json:"node,omitempty"`
	Status  string `json:"status,omitempty"` // a report's status
	Count   *int   `json:"count,omitempty"`  // remove-stale
}

// Outcomes of an event.
const (
	OutcomeOK      = "ok"
	OutcomeRefused = "refused"
	OutcomeFailed  = "failed"
)

// Log writes e, stamped with the time in UTC.
func (a *Audit) Log(e Event) {
	if a == nil {
		return
	}
	e.Time = a.now().UTC().Format(time.RFC3339Nano)
	b, _ := json.Marshal(e) // strings and an int only
	b = append(b, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, w := range a.out {
		_, _ = w.Write(b) // one write per line: O_APPEND keeps lines whole
	}
}
