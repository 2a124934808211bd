#!/bin/sh
# install-deps.sh installs the Debian packages that the tests and the demo
# need, when they are missing: a real OpenSSH sshd for the QA hosts, ip(8) and
# unshare(1) for the namespaces, openssl(1) for the certificate interop tests, curl(1) for the QA checks
# of the node daemon over TLS, etcd(1) for the slot store's tests against
# three real members (internal/master/slotstore).
# It needs root only when something is missing.
set -eu
need=""
command -v /usr/sbin/sshd >/dev/null 2>&1 || need="$need openssh-server"
command -v ssh >/dev/null 2>&1 || need="$need openssh-client"
command -v ip >/dev/null 2>&1 || need="$need iproute2"
command -v unshare >/dev/null 2>&1 || need="$need util-linux"
command -v git >/dev/null 2>&1 || need="$need git"
command -v openssl >/dev/null 2>&1 || need="$need openssl"
command -v curl >/dev/null 2>&1 || need="$need curl"
command -v etcd >/dev/null 2>&1 || need="$need etcd-server"
[ -z "$need" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps.sh: missing Debian packages:$need (run as root to install them)" >&2
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d on Debian images keeps openssh-server from starting a system sshd.
apt-get install -y -qq --no-install-recommends $need >/dev/null
echo "install-deps.sh: installed$need"
