package joinservice

import (
	"net/http"

	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/master/slotstore"
)

// againReason is the audit log's note on a fetch answered again.
const againReason = "answered again: this fetch key's earlier attempt had consumed the use (its answer was lost)"

// fetchSlot consumes a use of the slot for the request, or answers again
// the request whose fetch key had consumed it (joinapi.FetchKeyHeader);
// note is for the audit log.
func (s *Service) fetchSlot(r *http.Request, uuid, secret string) (sl slotstore.Slot, note string, err error) {
	key := r.Header.Get(joinapi.FetchKeyHeader)
	if key == "" {
		sl, err = s.store.Fetch(r.Context(), uuid, secret)
		return sl, "", err
	}
	sl, again, err := s.store.FetchKeyed(r.Context(), uuid, secret, key)
	return sl, noteAgain(again), err
}

// assignSlot is fetchSlot for a dynamic pool.
func (s *Service) assignSlot(r *http.Request, poolSecret string) (sl slotstore.Slot, note string, err error) {
	key := r.Header.Get(joinapi.FetchKeyHeader)
	if key == "" {
		sl, err = s.store.AssignDynamic(r.Context(), poolSecret)
		return sl, "", err
	}
	sl, again, err := s.store.AssignDynamicKeyed(r.Context(), poolSecret, key)
	return sl, noteAgain(again), err
}

func noteAgain(again bool) string {
	if again {
		return againReason
	}
	return ""
}
