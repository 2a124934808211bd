// Package harness starts throw-away cluster machines for end-to-end tests:
// each host is a set of Linux namespaces (network, mount, UTS, PID) running
// Debian's real OpenSSH sshd with its own /etc/ssh, /root and data
// directories, and all hosts of a lab share a bridge in a switch namespace.
//
// Each host has its own /etc/ssh, /root, /var/lib/ganeti, /etc/ganeti,
// /var/lib/nodejoin, /etc/nodejoin, /var/log and /usr/local/sbin (bind
// mounts of its tree in the lab dir, see Host.Path), tmpfs /run, /tmp,
// /var/tmp and /dev/shm, and sees the rest of the machine read-only: a
// program that writes elsewhere fails in the host instead of leaving a file
// on the machine. RunOverlaid and TakeSnapshot check that from outside.
//
// Nothing is placed in the root namespace: no interface, address, route or
// mount. Every name carries a random lab prefix ("nj" + 4 hex digits), so two
// labs, or the leftovers of a killed run, never collide; Sweep removes such
// leftovers and New calls it first.
//
// A test calls Require (skip unless root with ip(8), unshare(1), nsenter(1)
// and sshd(8)), then New, and runs commands on hosts with Host.Run. The lab is
// torn down by t.Cleanup; TestMain should call Main so that SIGINT and
// SIGTERM tear down open labs too.
//
// The recipe is the usual one for hosts made of namespaces: a holder
// process per host (unshare of pid, mount and UTS namespaces inside its own
// network namespace, entered with nsenter) on a veth bridge in a switch
// namespace, each with its own sshd. Two fixes were found here: a host's pid 1 must reap orphans (see holderInit),
// and sshd needs a moment after SIGHUP before it listens again (see
// restartScript).
package harness
