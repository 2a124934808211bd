// Package cli is the common frame of every nodejoin program: the shared flags,
// the exit status of an error, and the "prog: error:" and "prog: hint:" lines.
// Only this package prints errors and decides exit codes, so that every
// program keeps the same contract (doc/design.md, "Exit status").
package cli
