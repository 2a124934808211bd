package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Avahi per host (Options.Avahi), after seed-designs.md §4.5: each host has
// an /etc/avahi of its own (its avahi-daemon.conf, an empty services/), its
// own system bus at /run/dbus (the host's private /run) and its own
// avahi-daemon on eth0. Both daemons die with the host's pid namespace.

// AvahiServices is where avahi-daemon reads its static services.
const AvahiServices = "/etc/avahi/services"

const avahiDir = "etc/avahi" // in the host's tree

func avahiConf(host string) string {
	return "[server]\nhost-name=" + host + "\nuse-ipv4=yes\nuse-ipv6=no\nallow-interfaces=eth0\nenable-dbus=yes\n" +
		"ratelimit-interval-usec=1000000\nratelimit-burst=1000\n\n[wide-area]\nenable-wide-area=no\n\n" +
		"[publish]\npublish-hinfo=no\npublish-workstation=no\n\n[reflector]\nenable-reflector=no\n\n[rlimits]\n"
}

func (h *Host) prepareAvahi() error {
	dir := filepath.Join(h.dir, avahiDir)
	if err := os.MkdirAll(filepath.Join(dir, "services"), 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "avahi-daemon.conf"), []byte(avahiConf(h.Name)), 0o644)
}

// StartAvahi starts the host's dbus-daemon and avahi-daemon and waits until
// avahi answers on the bus.
func (h *Host) StartAvahi() error {
	script := "set -e; mkdir -p /run/dbus /run/avahi-daemon; " +
		"dbus-daemon --system --fork --nopidfile; " +
		"avahi-daemon --no-drop-root --no-chroot --no-rlimits -D"
	if err := h.sh(script); err != nil {
		return fmt.Errorf("starting dbus and avahi: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		out, _, code, err := h.Run(ctx, nil, "avahi-daemon", "--check")
		if err == nil && code == 0 {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("avahi-daemon does not run: %s", strings.TrimSpace(string(out)))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
