// Package nodeadvert writes this machine's advert (internal/advert) as the
// avahi static service file, through the transaction: join-advertise's
// plan, and node-join's when it advertises itself and, once joined, says
// so.
package nodeadvert

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/nodejoin/nodejoin/internal/advert"
	"github.com/nodejoin/nodejoin/internal/apply"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
	"github.com/nodejoin/nodejoin/internal/sshkeys"
	"github.com/nodejoin/nodejoin/internal/txn"
)

// HostKeyFile is the host key whose fingerprint an advert carries when none
// is given: the ed25519 key every supported sshd has.
const HostKeyFile = "/etc/ssh/ssh_host_ed25519_key.pub"

// HostKeyFingerprint is the fingerprint of the machine's HostKeyFile.
func HostKeyFingerprint(cfg *nodeconf.Config) (string, error) {
	pub, err := HostKey(cfg)
	if err != nil {
		return "", err
	}
	return sshkeys.Fingerprint(pub), nil
}

// HostKey reads the machine's HostKeyFile.
func HostKey(cfg *nodeconf.Config) (ssh.PublicKey, error) {
	b, err := os.ReadFile(cfg.Path(HostKeyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, problem.Reject("/host_key_fingerprint", "not given, and this machine has no %s to take it from", HostKeyFile)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", HostKeyFile, err)
	}
	pub, err := sshkeys.ParsePublicLine(string(b))
	if err != nil {
		return nil, problem.Reject("/host_key_fingerprint", "not given, and %s does not read as a public key: %v", HostKeyFile, err)
	}
	return pub, nil
}

// Planner writes the service file publishing a on port, or removes it;
// avahi-daemon notices a change of its services directory by inotify, so
// nothing is restarted.
func Planner(cfg *nodeconf.Config, a *advert.Advert, port int) apply.Planner {
	var data []byte
	if a != nil {
		data = advert.ServiceXML(*a, port)
	}
	return func() (*apply.Plan, error) {
		uid, gid := os.Geteuid(), os.Getegid()
		file := txn.Item{NodePath: advert.ServiceFile, Data: data, Mode: 0o644, UID: uid, GID: gid, Remove: a == nil}
		if a == nil {
			return &apply.Plan{Items: []txn.Item{file}}, nil
		}
		dirs, err := txn.MissingDirs(cfg.Root, path.Dir(advert.ServiceFile), 0o755, uid, gid)
		if err != nil {
			return nil, err
		}
		return &apply.Plan{Items: append(dirs, file)}, nil
	}
}

// NextSecond waits, before the advert is rewritten, until the clock is
// past the second of the file's modification time: avahi-daemon reloads a
// static service only when the file's st_mtime, in whole seconds, has
// changed (static-services.c), so a second write within the same second
// (ready, then registered at once) would go unnoticed.
func NextSecond(ctx context.Context, cfg *nodeconf.Config) error {
	fi, err := os.Stat(cfg.Path(advert.ServiceFile))
	if err != nil {
		return nil // no file: avahi loads a new one whatever its time
	}
	next := time.Unix(fi.ModTime().Unix()+1, 0)
	d := time.Until(next)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d + 10*time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
