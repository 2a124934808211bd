package clusterlab

import (
	"context"
	"os"

	"github.com/nodejoin/nodejoin/qa/harness"
)

// LegacyScript is the benchmark baseline: a node joined the way Ganeti did
// before 2.7 (Ganeti's doc/design-node-add.rst, "Current state"), driven
// from the master with the system's ssh and scp, one connection per file.
// It runs on master as `sh /root/legacy-join NODE`.
//
//  1. the cluster's SSH host keys (to a staging directory) and root's key
//     pair (already authorized), one scp each, checked against the node's
//     own host key (StrictHostKeyChecking=yes with the operator's
//     known_hosts), with one ssh before to make the staging directory and
//     one after to move the host keys in and restart sshd;
//  2. every ssconf file, hmac.key, server.pem and the cluster known_hosts,
//     one scp each, now checked against the cluster host key (HostKeyAlias =
//     the cluster name in /var/lib/ganeti/known_hosts, as Ganeti did);
//  3. one ssh to (re)start the node daemon, then, like Ganeti's
//     _WaitForNodeDaemon, ask it for /version over TLS until it answers.
//
// Modes travel with scp -p. Nothing is checked before it is copied: that is
// the point of the comparison. node-daemon-setup's client.pem has no
// counterpart here (pre-2.7 nodes had none); it is not copied.
const LegacyScript = `#!/bin/sh
# legacy-join NODE: join NODE the pre-2.7 Ganeti way (nodejoin QA baseline).
set -eu
node=$1
cluster=$(cat /var/lib/ganeti/ssconf_cluster_name)
old="-o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/root/.ssh/known_hosts -o ControlPath=none -o ConnectTimeout=10"
new="-o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/var/lib/ganeti/known_hosts -o GlobalKnownHostsFile=/dev/null -o HostKeyAlias=$cluster -o ControlPath=none -o ConnectTimeout=10"
# 1. SSH: host keys to a staging directory (sshd reads its host keys for
# every connection: a private key replaced before its .pub drops the key),
# root's keys in place, then move the host keys in and restart sshd.
ssh $old "root@$node" mkdir -p -m 0700 /root/.legacy-stage
for f in /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub; do
	scp -p -q $old "$f" "root@$node:/root/.legacy-stage/"
done
for f in /root/.ssh/id_ed25519 /root/.ssh/id_ed25519.pub; do
	scp -p -q $old "$f" "root@$node:$f"
done
ssh $old "root@$node" 'mv /root/.legacy-stage/ssh_host_* /etc/ssh/ && rmdir /root/.legacy-stage && nj-restart-sshd'
# 2. The node daemon's files.
for f in /var/lib/ganeti/ssconf_* /var/lib/ganeti/hmac.key /var/lib/ganeti/server.pem /var/lib/ganeti/known_hosts; do
	scp -p -q $new "$f" "root@$node:$f"
done
# 3. Start the node daemon and wait until it answers.
ssh $new "root@$node" noded --restart
pin=$(openssl x509 -in /var/lib/ganeti/server.pem -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)
i=0
until curl -sS -o /dev/null --max-time 5 -k --pinnedpubkey "sha256//$pin" --cert /var/lib/ganeti/client.pem "https://$node:1811/version"; do
	i=$((i + 1)); [ "$i" -lt 30 ] || { echo "legacy-join: $node: node daemon does not answer" >&2; exit 1; }
	sleep 1
done
`

// InstallLegacy writes LegacyScript to master's /root/legacy-join.
func (l *Lab) InstallLegacy() error {
	return os.WriteFile(l.Master.Path("/root/legacy-join"), []byte(LegacyScript), 0o755)
}

// LegacyJoin joins node with LegacyScript.
func (l *Lab) LegacyJoin(ctx context.Context, node *harness.Host) Result {
	return Run(ctx, l.Master, nil, "sh", "/root/legacy-join", node.Name)
}
