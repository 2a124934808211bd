package sshrun

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nodejoin/nodejoin/internal/sshkeys"
)

// HostKey is one SSH public key of a host, as known_hosts writes it.
type HostKey struct {
	Type   string // "ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa", ...
	Base64 string // the key blob, base64
}

// Fingerprint returns the key's SHA256 fingerprint as ssh-keygen -l prints
// it: "SHA256:" and unpadded base64 of the blob's hash.
func (k HostKey) Fingerprint() string {
	blob, err := base64.StdEncoding.DecodeString(k.Base64)
	if err != nil {
		return "SHA256:(invalid key)"
	}
	return sshkeys.FingerprintBlob(blob)
}

// Line returns the key as a known_hosts line for host.
func (k HostKey) Line(host string) string { return host + " " + k.Type + " " + k.Base64 }

// knownEntry is one known_hosts line that matched the host.
type knownEntry struct {
	marker string // "", "@revoked" or "@cert-authority"
	key    HostKey
	file   string
}

// familyAlgorithms is the HostKeyAlgorithms value that makes a server
// present its key of one family.
var familyAlgorithms = []struct{ family, algorithms string }{
	{"ed25519", "ssh-ed25519"},
	{"ecdsa", "ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521"},
	{"rsa", "rsa-sha2-512,rsa-sha2-256,ssh-rsa"},
}

// effectiveConfig is what `ssh -G` says about the host: where the
// operator's known_hosts files are, and the name and port to look up.
type effectiveConfig struct {
	hostname   string
	port       int
	alias      string
	knownFiles []string
}

// readEffectiveConfig asks ssh what it would do for host, without
// connecting.
func readEffectiveConfig(ctx context.Context, sshPath string, args []string) (*effectiveConfig, error) {
	cmd := exec.CommandContext(ctx, sshPath, append([]string{"-G"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("reading ssh configuration (ssh -G): %w: %s", err, firstLine(stderr.String()))
	}
	ec := &effectiveConfig{port: 22}
	home, _ := os.UserHomeDir()
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name, value, _ := strings.Cut(sc.Text(), " ")
		switch name {
		case "hostname":
			ec.hostname = value
		case "port":
			if p, err := strconv.Atoi(value); err == nil {
				ec.port = p
			}
		case "hostkeyalias":
			ec.alias = value
		case "userknownhostsfile", "globalknownhostsfile":
			for _, f := range strings.Fields(value) {
				if strings.HasPrefix(f, "~/") && home != "" {
					f = filepath.Join(home, f[2:])
				}
				if f != "/dev/null" {
					ec.knownFiles = append(ec.knownFiles, f)
				}
			}
		}
	}
	return ec, nil
}

// lookupName is the name known_hosts files list the host under.
func (ec *effectiveConfig) lookupName() string {
	if ec.alias != "" {
		return ec.alias
	}
	if ec.port != 22 {
		return "[" + ec.hostname + "]:" + strconv.Itoa(ec.port)
	}
	return ec.hostname
}

// findKnown lists the entries for name in files, using ssh-keygen -F so
// that hashed names, patterns and [host]:port entries match exactly as ssh
// matches them. Missing files are skipped.
func findKnown(ctx context.Context, keygen string, name string, files []string) ([]knownEntry, error) {
	var out []knownEntry
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			continue
		}
		cmd := exec.CommandContext(ctx, keygen, "-F", name, "-f", f)
		stdout, err := cmd.Output()
		if err != nil {
			// ssh-keygen -F exits 1 when nothing matches.
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) && ee.ExitCode() == 1 && len(stdout) == 0 {
				continue
			}
			return nil, fmt.Errorf("reading %s (ssh-keygen -F): %w", f, err)
		}
		out = append(out, parseKnown(stdout, f)...)
	}
	return out, nil
}

// parseKnown parses ssh-keygen -F output: comment lines and known_hosts
// lines "[marker] hosts type base64 [comment]".
func parseKnown(data []byte, file string) []knownEntry {
	var out []knownEntry
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		marker := ""
		if strings.HasPrefix(fields[0], "@") {
			marker, fields = fields[0], fields[1:]
		}
		if len(fields) < 3 {
			continue
		}
		out = append(out, knownEntry{marker: marker, key: HostKey{Type: fields[1], Base64: fields[2]}, file: file})
	}
	return out
}

// helperScript is the KnownHostsCommand. ssh runs it as
// "/bin/sh helper %I %t %K %f": for the host-name lookup it records the
// offered key in "offered" and prints it as a known_hosts line when its
// fingerprint is pinned, or when accepting a new host is allowed. It never
// sees a secret; its arguments come from ssh, not from a shell string. It
// uses the shell's builtins only: ssh runs it more than once per connection,
// and each program it started (dirname, grep, cat) was a fork and an exec.
const helperScript = `#!/bin/sh
# Written by nodejoin internal/master/sshrun; ssh runs it as its KnownHostsCommand.
# $1 invocation (ORDER, HOSTNAME, ADDRESS), $2 key type, $3 key, $4 fingerprint.
[ "$1" = HOSTNAME ] || exit 0
case "$3" in ""|NONE) exit 0 ;; esac
d=${0%/*}
printf '%s %s %s\n' "$2" "$3" "$4" >>"$d/offered"
if [ -s "$d/pins" ]; then
	pinned=
	while IFS= read -r p || [ -n "$p" ]; do
		[ "$p" = "$4" ] && pinned=yes
	done <"$d/pins"
	[ -n "$pinned" ] || exit 0
elif [ ! -e "$d/accept-new" ]; then
	exit 0
fi
IFS= read -r alias <"$d/alias" || :
printf '%s %s %s\n' "$alias" "$2" "$3"
`

// readOffered returns the keys the helper saw offered, oldest first.
func readOffered(dir string) []HostKey {
	data, err := os.ReadFile(filepath.Join(dir, "offered"))
	if err != nil {
		return nil
	}
	var out []HostKey
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			out = append(out, HostKey{Type: f[0], Base64: f[1]})
		}
	}
	return out
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
