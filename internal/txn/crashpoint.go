//go:build !failpoint

package txn

// crashpoint marks a step where a kill must leave every file old or new.
// Built with -tags failpoint, it can kill the process there (crashpoint_failpoint.go).
func crashpoint(string) {}
