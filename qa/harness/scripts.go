package harness

import (
	"fmt"
	"strings"
)

// holderInit is what a host's pid 1 runs once the host is set up. It must
// reap orphans: daemons (sshd) are reparented to it, and with the seed
// recipe's `exec sleep infinity` a stopped sshd stays a zombie, so `kill -0`
// on its pid still succeeds and a restart script thinks it is running. dash's
// `wait` reaps any child (waitpid(-1)) while it waits for its sleep job.
const holderInit = `while :; do sleep 3600 & wait; done`

// mountPlan is one host's mount namespace, built by its holder before it
// reports ready.
type mountPlan struct {
	hostname string
	// overlays are directories that lack a mount point we need (/etc for
	// /etc/nodejoin): an overlay with its upper layer in the lab dir lets us
	// create it without touching the real root filesystem, and keeps the
	// rest of the directory (/etc/passwd) visible.
	overlays []overlay
	// tmpfsVarLib is set when /var/lib lacks ganeti or nodejoin: a tmpfs
	// over /var/lib gets them created, as the brief asks.
	tmpfsVarLib bool
	mkdirs      []string // mount points to create after the tmpfs and overlays
	binds       [][2]string
	hide        []string // directories covered by an empty read-only tmpfs
}

type overlay struct {
	dir, upper, work string
	rw               bool // left writable (Options.WritableEtc)
}

// script returns the holder's shell script. Paths are the harness's own
// (hex names under baseDir) and quoted anyway.
func (p mountPlan) script() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("set -e")
	w("hostname %s", shq(p.hostname))
	// A private /run: sshd's privilege separation dir and pid file, and
	// Debian's /var/lock -> /run/lock, belong to this host only.
	w("mount -t tmpfs -o mode=0755 tmpfs /run")
	w("mkdir -m 0755 /run/sshd /run/lock")
	if p.tmpfsVarLib {
		w("mount -t tmpfs -o mode=0755 tmpfs /var/lib")
	}
	for _, o := range p.overlays {
		w("mount -t overlay overlay -o %s %s", shq("lowerdir="+o.dir+",upperdir="+o.upper+",workdir="+o.work), shq(o.dir))
	}
	for _, d := range p.mkdirs {
		w("mkdir -p %s", shq(d))
	}
	for _, bd := range p.binds {
		w("mount --bind %s %s", shq(bd[0]), shq(bd[1]))
	}
	// Scratch space of the host's own, gone with it.
	for _, d := range []string{"/tmp", "/var/tmp", "/dev/shm"} {
		w("mount -t tmpfs -o mode=1777 tmpfs %s", d)
	}
	// The rest of the machine is read-only here: a write outside the host's
	// own directories fails where it happens (see WritableDirs), also in the
	// tmpfs and overlays that only made mount points.
	for _, d := range p.hide {
		w("mount -t tmpfs -o ro,mode=0755 tmpfs %s", shq(d))
	}
	w("mount -o remount,bind,ro /")
	if p.tmpfsVarLib {
		w("mount -o remount,ro /var/lib")
	}
	for _, o := range p.overlays {
		if !o.rw {
			w("mount -o remount,ro %s", shq(o.dir))
		}
	}
	w("echo ready")
	w("exec sh -c %s </dev/null >/dev/null 2>&1", shq(holderInit))
	return b.String()
}

// shq quotes s for sh.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// sshdConfig is Debian's default sshd_config made explicit, plus what a lab
// host needs: its own address, a pid file for the restart script, and
// LogLevel VERBOSE so that every accepted connection is logged. StrictModes
// stays at its default (yes): /root and /root/.ssh are bind mounts of 0700
// directories owned by root, and sshd checks only the path from the
// authorized_keys file up to the home directory, so it passes.
func sshdConfig(name, ip string) string {
	return `# sshd_config of lab host ` + name + `, written by the nodejoin QA harness.
Include /etc/ssh/sshd_config.d/*.conf
Port 22
ListenAddress ` + ip + `
# The default paths, so that replacing the files and restarting sshd switches
# keys. Only the two types a lab host is given are listed: sshd logs an error
# for each listed key file that is missing.
HostKey /etc/ssh/ssh_host_rsa_key
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PidFile /run/sshd.pid
LogLevel VERBOSE
PrintMotd no
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
`
}

// restartScript is nj-restart-sshd, the node's sshd restart command in the
// lab. Like Debian's `systemctl reload ssh` it runs `sshd -t`, then sends
// SIGHUP, which makes sshd re-execute itself and reread its config and host
// keys; it starts sshd when none runs. sshd closes its listening socket
// before the re-exec, so the script returns only once the log shows sshd
// listening again: a caller can connect right after it. It looks every
// 10 ms: sshd listens again some milliseconds after the signal, and a
// coarser poll would add its interval to every join's prepare step.
func restartScript(log string) string {
	return `#!/bin/sh
# nj-restart-sshd: check sshd's config, then reload sshd (SIGHUP) or start it;
# return once it listens again. Written by the nodejoin QA harness.
set -eu
log=` + shq(log) + `
listening() { n=$(grep -c 'Server listening on' "$log" 2>/dev/null || :); echo "${n:-0}"; }
` + sshdPath + ` -t -f /etc/ssh/sshd_config
before=$(listening)
pid=$(cat /run/sshd.pid 2>/dev/null || :)
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
	kill -HUP "$pid"
else
	` + sshdPath + ` -f /etc/ssh/sshd_config -E "$log"
fi
i=0
while [ "$(listening)" -le "$before" ]; do
	i=$((i + 1))
	if [ "$i" -gt 1000 ]; then
		echo "nj-restart-sshd: sshd is not listening after 10s; see $log" >&2
		exit 1
	fi
	sleep 0.01
done
`
}

// checkScript is nj-check-sshd, the node's sshd check command in the lab.
const checkScript = `#!/bin/sh
# nj-check-sshd: check sshd's configuration and host keys. Written by the
# nodejoin QA harness.
exec ` + sshdPath + ` -t -f /etc/ssh/sshd_config
`
