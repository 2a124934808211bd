package joinservice

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"
)

// ErrRunning: another join-service answers on the admin socket.
var ErrRunning = errors.New("another join-service answers on the admin socket")

// ListenAdmin creates the admin socket at path with mode 0600 (root
// only): it listens on a temporary name, sets the mode, then renames it
// into place, so the socket is never reachable with a looser mode. A
// socket left by a dead daemon is replaced; a live one is refused.
func ListenAdmin(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the admin socket's directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			_ = c.Close()
			return nil, fmt.Errorf("%s: %w", path, ErrRunning)
		}
	}
	// Shorter than the final name, so a path that fits sun_path
	// (108 bytes) fits while it is made.
	tmp := filepath.Join(dir, fmt.Sprintf(".%d.sock", os.Getpid()))
	_ = os.Remove(tmp)
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("listening on the admin socket: %w", err)
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		_ = ln.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("setting the admin socket's mode: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = ln.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("putting the admin socket in place: %w", err)
	}
	return &adminListener{UnixListener: ul, path: path}, nil
}

// adminListener removes its socket file on Close.
type adminListener struct {
	*net.UnixListener
	path string
}

func (l *adminListener) Close() error {
	err := l.UnixListener.Close()
	_ = os.Remove(l.path)
	return err
}
