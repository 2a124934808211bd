package sshrun

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors; every error Dial and Run return wraps one of them, so
// that callers can name the step that failed.
var (
	ErrUnreachable = errors.New("node unreachable")
	ErrHostKey     = errors.New("host key not trusted")
	ErrAuth        = errors.New("authentication failed")
	ErrTimeout     = errors.New("timed out")
	ErrConnection  = errors.New("ssh connection failed")
	// ErrNoExitStatus: the connection is fine, but the remote program
	// ended without an exit status, as when it is killed by a signal.
	ErrNoExitStatus = errors.New("the remote program ended without an exit status (killed by a signal?)")
)

// HostKeyProblem says why a host key was refused.
type HostKeyProblem string

// The host-key problems.
const (
	HostKeyUnknown   HostKeyProblem = "unknown"     // no known_hosts entry, no pin
	HostKeyChanged   HostKeyProblem = "changed"     // known_hosts lists another key
	HostKeyNotPinned HostKeyProblem = "not pinned"  // no offered key has a pinned fingerprint
	HostKeyRevoked   HostKeyProblem = "revoked"     // known_hosts marks the key @revoked
	HostKeyNoOffer   HostKeyProblem = "not offered" // the server offered no key we could see
	// HostKeyCluster: the host offers the cluster's host key, which every
	// node holds, and Config.TrustClusterKeys is not set.
	HostKeyCluster HostKeyProblem = "cluster key"
)

// HostKeyError is a refused host key. It carries fingerprints only.
type HostKeyError struct {
	Host    string
	Problem HostKeyProblem
	Offered []string // fingerprints the node offered
	Known   []string // fingerprints the master expected (known_hosts or pins)
}

func (e *HostKeyError) Error() string {
	switch e.Problem {
	case HostKeyUnknown:
		return fmt.Sprintf("host key of %s is unknown: %s %s", e.Host, e.offeredNoun(), strings.Join(e.Offered, ", "))
	case HostKeyChanged:
		return fmt.Sprintf("host key of %s has changed: known %s, offered %s",
			e.Host, strings.Join(e.Known, ", "), strings.Join(e.Offered, ", "))
	case HostKeyNotPinned:
		return fmt.Sprintf("host key of %s does not match --host-key-fingerprint %s: offered %s",
			e.Host, strings.Join(e.Known, ", "), strings.Join(e.Offered, ", "))
	case HostKeyRevoked:
		return fmt.Sprintf("host key of %s is marked @revoked in known_hosts: %s", e.Host, strings.Join(e.Offered, ", "))
	case HostKeyCluster:
		return fmt.Sprintf("%s offers the cluster's host key %s but is not a recorded node; every node holds that key, so it does not show which machine this is",
			e.Host, strings.Join(e.Offered, ", "))
	}
	return fmt.Sprintf("host key of %s could not be verified", e.Host)
}

func (e *HostKeyError) offeredNoun() string {
	if len(e.Offered) == 1 {
		return "fingerprint"
	}
	return "fingerprints"
}

// Unwrap makes errors.Is(err, ErrHostKey) true.
func (e *HostKeyError) Unwrap() error { return ErrHostKey }

// Hints are lines for the operator: how to trust the key.
func (e *HostKeyError) Hints() []string {
	switch e.Problem {
	case HostKeyUnknown:
		return []string{
			"compare with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the node's console, then pass --host-key-fingerprint " + first(e.Offered),
			"or pass --accept-new-host-key to trust the key on first use",
		}
	case HostKeyChanged:
		return []string{"if the node was reinstalled, remove its old key (ssh-keygen -R) or pass the new one with --host-key-fingerprint after checking it on the node's console"}
	case HostKeyNotPinned:
		return []string{"check the fingerprint on the node's console: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub"}
	case HostKeyCluster:
		return []string{
			"prepare-node-join has already run on " + e.Host + " (by hand, or in a node-add that failed at a later step)",
			"if you know the machine is " + e.Host + ", pin the cluster's key for it: --host-key-fingerprint " + e.Host + "=" + first(e.Offered),
		}
	}
	return nil
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
