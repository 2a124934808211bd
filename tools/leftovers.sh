#!/bin/sh
# leftovers.sh runs a command (the test run) and fails if it leaves
# anything behind: in a fresh private TMPDIR given to the command, in the
# host's own nodejoin paths, or as a QA lab under /tmp/njqa whose lock is
# no longer held (qa/harness's own rule for a dead lab). Other checkouts'
# test runs may write /tmp at the same time, so new /tmp entries under
# nodejoin's other names are only warned about: with TMPDIR private, this
# run puts them in TMPDIR, where they are counted.
#
#	usage: tools/leftovers.sh COMMAND [ARG...]
set -u
host="/var/log/nodejoin /var/lib/nodejoin /etc/nodejoin /run/nodejoin /var/lock/nodejoin.lock"

owned() {
	for p in $host; do
		if [ -e "$p" ] || [ -L "$p" ]; then find "$p"; fi
	done
	for p in /tmp/njqa/* /tmp/njqa/.[!.]*; do
		[ -e "$p" ] || continue
		case "$p" in
		*.lock) ;;
		*/nj????) # dead: no lock file, or nobody holds it (flock(1) would create a missing one)
			if [ ! -e "$p.lock" ] || flock -n "$p.lock" true 2>/dev/null; then echo "$p"; fi ;;
		*) echo "$p" ;;
		esac
	done
	return 0
}

# Names nodejoin's code and tests create under $TMPDIR.
named() {
	for p in /tmp/sshrun-keys-* /tmp/nodejoin-*; do
		case "$p" in /tmp/nodejoin-test.*) continue ;; esac # this script's, of any run
		if [ -e "$p" ]; then echo "$p"; fi
	done
	return 0
}

priv=$(mktemp -d /tmp/nodejoin-test.XXXXXX) || exit 1
snap=$(mktemp -d /tmp/nodejoin-test.XXXXXX) || exit 1
owned | sort >"$snap/owned.before"
named | sort >"$snap/named.before"
TMPDIR=$priv "$@"
status=$?
owned | sort >"$snap/owned.after"
named | sort >"$snap/named.after"

left=$(find "$priv" -mindepth 1 -maxdepth 2 | sort | sed "s|^$priv|\$TMPDIR|")
new=$(comm -13 "$snap/owned.before" "$snap/owned.after")
other=$(comm -13 "$snap/named.before" "$snap/named.after")
rm -rf "$priv" "$snap"
if [ -n "$other" ]; then
	echo "leftovers.sh: warning: new in /tmp during the run (this run used TMPDIR=$priv; another run on this machine?):" >&2
	echo "$other" | sed 's/^/  /' >&2
fi
if [ -n "$left$new" ]; then
	echo "leftovers.sh: the run left these behind (TMPDIR was $priv, now removed):" >&2
	if [ -n "$left" ]; then echo "$left" | sed 's/^/  /' >&2; fi
	if [ -n "$new" ]; then echo "$new" | sed 's/^/  /' >&2; fi
	[ "$status" -eq 0 ] && status=1
fi
exit "$status"
