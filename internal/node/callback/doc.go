// Package callback is the node's side of the machine callback
// (callback-setup(8)): the callback key, the master's pinned host keys, the
// settings of the reverse tunnel, and its supervisor — a systemd unit
// running the system's ssh, or Supervise where systemd does not run. The
// tunnel is OpenSSH's own `ssh -N -R localhost:PORT:localhost:22`; the
// master's sshd enforces what it may do (callback-grant(8)).
package callback
