// Package sshkeys handles the SSH keys of a node: the cluster's SSH host keys
// and root's user keys. It parses and checks key pairs given in a document
// (private matches public, kind and size allowed), generates new pairs,
// fingerprints public keys as ssh-keygen -l does, and merges keys into an
// authorized_keys file without disturbing the lines already there.
//
// Errors never contain key material, not even a public key: documents carry
// private keys, and an error text ends up in logs and on the master's
// terminal (Ganeti logged whole documents, keys included).
package sshkeys
