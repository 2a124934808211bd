// Package install puts the node-side programs on a node over an SSH
// connection node-add already holds: a handshake asks the node which of
// them it has and of which version, then each missing or different
// program is streamed to a temporary file beside its target, checked by
// its sha256 on the node, given mode 0755 and owner root, fsynced, and
// only once every program has arrived whole renamed over its target. See
// doc/packaging.md, "node-add --install".
package install
