// Package sshrun runs programs on a node over one OpenSSH connection.
//
// Dial starts the system ssh(1) as a ControlMaster whose socket lives in a
// private 0700 directory; Run starts each program as a session multiplexed
// over that master, with its document on standard input (never on the
// command line) and its standard output, standard error and exit status
// returned. The operator's ssh_config is respected (user, port, identities,
// ProxyJump), except for host-key trust, which this package decides:
//
//   - The node's host key is checked inside the master connection's own key
//     exchange, before any authentication, by a KnownHostsCommand that this
//     package writes into the private directory. It accepts the offered key
//     if its fingerprint is one of the pinned fingerprints
//     (--host-key-fingerprint), or, with no pin, if the master's known_hosts
//     files list it; with AcceptNew it accepts a key for a host that no file
//     lists. The cluster's host keys, which every joined node presents, are
//     trusted only for a host the caller vouches for (Config.TrustClusterKeys:
//     a node the master has recorded). ssh runs with StrictHostKeyChecking=yes and a private
//     UserKnownHostsFile, so anything else ends the connection before a
//     login, and the command's record of the offered key says why: unknown
//     (its fingerprint), changed (both fingerprints) or not pinned.
//   - No probe connection: the node's sshd sees one TCP connection per Dial.
//     The one exception: a pin that names a key of a type the server does
//     not offer first costs one more pre-authentication connection per key
//     type tried (ed25519, then ecdsa, then rsa).
//
// See doc/sshrun.md for the reasoning and for what was measured.
package sshrun
