package nodedserver

import "github.com/nodejoin/nodejoin/internal/connlimit"

// Limits bound what one client can make the daemon spend: timeouts and
// connections per address and in all (internal/connlimit, which
// join-service shares).
type Limits = connlimit.Limits
