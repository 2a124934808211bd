#!/bin/sh
# install-deps.sh installs the Debian packages that the tests and the demo
# need, when they are missing: a real OpenSSH sshd for the QA hosts, ip(8) and
# unshare(1) for the namespaces, openssl(1) for the certificate interop tests,
# curl(1) for the QA checks of the node daemon over TLS, Debian's ganeti
# (3.0 on bookworm) for the QA scenario against a real Ganeti master,
# lintian(1), man(1) and systemd-analyze(1) for the checks of the Debian
# packages (systemd's package brings its files only: it does not become PID 1
# here, and policy-rc.d keeps its services from starting), and
# etcd(1) (etcd-server) for the slot store's tests, which start three members
# of their own on loopback.
# It needs root only when something is missing.
#
# Installing a package must not start its daemons on this machine: the QA
# hosts run sshd and Ganeti's daemons in their own namespaces only. Debian's
# maintainer scripts start services through invoke-rc.d, which asks
# /usr/sbin/policy-rc.d; where there is none (container images have one),
# one that denies everything is put in place for the install and removed.
set -eu
need=""
command -v /usr/sbin/sshd >/dev/null 2>&1 || need="$need openssh-server"
command -v ssh >/dev/null 2>&1 || need="$need openssh-client"
command -v ip >/dev/null 2>&1 || need="$need iproute2"
command -v unshare >/dev/null 2>&1 || need="$need util-linux"
command -v git >/dev/null 2>&1 || need="$need git"
command -v openssl >/dev/null 2>&1 || need="$need openssl"
command -v curl >/dev/null 2>&1 || need="$need curl"
# nft(8): the callback scenario's firewall, inside a lab host's network namespace only.
command -v nft >/dev/null 2>&1 || need="$need nftables"
command -v lintian >/dev/null 2>&1 || need="$need lintian"
command -v man >/dev/null 2>&1 || need="$need man-db"
command -v systemd-analyze >/dev/null 2>&1 || need="$need systemd"
command -v etcd >/dev/null 2>&1 || need="$need etcd-server"
# Auto-registration's scenarios: a dbus-daemon and an avahi-daemon per lab host
# (policy-rc.d keeps the machine's own from starting), avahi-browse(1).
command -v dbus-daemon >/dev/null 2>&1 || need="$need dbus"
command -v avahi-daemon >/dev/null 2>&1 || need="$need avahi-daemon"
command -v avahi-browse >/dev/null 2>&1 || need="$need avahi-utils"
[ -x /usr/sbin/gnt-cluster ] && [ -x /usr/lib/ganeti/daemon-util ] || need="$need ganeti"
# cloud-init(1): render-cloud-config's schema oracle and the first-boot
# scenario, which runs its stages in a lab host only; setpriv(1) for that
# scenario's unprivileged reader. The machine itself must never run it at
# boot: its marker file disables the units (below).
command -v cloud-init >/dev/null 2>&1 || need="$need cloud-init"
command -v setpriv >/dev/null 2>&1 || need="$need util-linux"
[ -z "$need" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps.sh: missing Debian packages:$need (run as root to install them)" >&2
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if [ ! -e /usr/sbin/policy-rc.d ]; then
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	printf '#!/bin/sh\n# install-deps.sh: start no service while packages install\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 0755 /usr/sbin/policy-rc.d
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends $need >/dev/null
case " $need " in *" cloud-init "*) touch /etc/cloud/cloud-init.disabled ;; esac
# Nothing of Ganeti may run on the machine itself (lab hosts have their own
# pid namespaces: their daemons are not this one's).
self=$(readlink /proc/self/ns/pid)
for pid in $(pgrep -f 'ganeti-(noded|confd|wconfd|rapi|luxid|kvmd|mond|metad)' || :); do
	if [ "$(readlink "/proc/$pid/ns/pid" 2>/dev/null || :)" = "$self" ]; then
		echo "install-deps.sh: error: installing$need started $(tr '\0' ' ' <"/proc/$pid/cmdline") (pid $pid) on this machine" >&2
		echo "install-deps.sh: hint: stop it; is /usr/sbin/policy-rc.d missing or allowing starts?" >&2
		exit 1
	fi
done
echo "install-deps.sh: installed$need"
