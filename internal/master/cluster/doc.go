// Package cluster is the master's cluster state, in Ganeti's layout under
// the data directory (server.pem, client.pem, hmac.key, ssconf_*,
// known_hosts, ganeti_pub_keys) plus the toolkit's own settings
// (/var/lib/nodejoin/cluster.json): creating it (Init), building the two
// join documents from it, and recording a joined node. Every write is
// atomic, and updates of a joined node are serialised by a lock, so that
// concurrent joins each leave their entry.
package cluster
