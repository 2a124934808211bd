// Package cli is the common frame of every nodejoin program: the shared flags,
// the exit status of an error, and the "prog: error:" and "prog: hint:" lines.
// Only this package prints errors and turns them into exit codes (the
// vocabulary is internal/problem's), so that every program keeps the same
// contract (doc/design.md, "Exit status"). It sits under cmd/internal, so
// only the programs can import it.
package cli
