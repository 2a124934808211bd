//go:build failpoint

package txn

import (
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
)

// In test builds (-tags failpoint), NODEJOIN_CRASH_AT=N sends SIGKILL to the
// process at the Nth crash point, so a test can kill a run at every step.
var steps atomic.Int64

func crashpoint(step string) {
	at, err := strconv.ParseInt(os.Getenv("NODEJOIN_CRASH_AT"), 10, 64)
	if err != nil {
		return
	}
	if n := steps.Add(1); n == at {
		fmt.Fprintf(os.Stderr, "failpoint: killed at step %d: %s\n", n, step)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}
