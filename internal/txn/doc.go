// Package txn is the only code that writes files on a node. All writes of
// one run form one transaction: each file is written to a temporary file in
// its directory with its final mode and owner from the first byte, fsynced,
// renamed over the target and the directory fsynced, so readers see the old
// file or the new one, never a mix. Before a file is replaced, its old
// content is copied to a backup (Ganeti's "<name>.backup-<time>.<random>"
// naming, mode 0600) and the change is recorded in a journal. If a later step
// fails, Rollback puts every file back and re-runs the restart commands on
// the old state; if the process is killed, the next run's Begin or Recover
// finishes that rollback from the journal first.
//
// The steps are taken for all files of a run at once (batch.go): the journal
// once, all backups, all new files, so that each phase's fsyncs are issued
// together and each directory is synced once, not once per file.
//
// The journal names paths, modes and owners only, never content.
package txn
