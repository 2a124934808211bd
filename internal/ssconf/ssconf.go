// Package ssconf is Ganeti's "simple store" format: one small file per key,
// ssconf_<key> in the data directory, read by Ganeti's daemons and tools.
package ssconf

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// MaxSize is the largest value Ganeti reads or writes (lib/ssconf.py _MAX_SIZE).
const MaxSize = 128 << 10

// FileMode is Ganeti's SS_FILE_PERMS.
const FileMode = 0o444

// LockFile is Ganeti's ssconf lock, in the node's lock directory.
const LockFile = "ganeti-ssconf.lock"

// Keys are Ganeti 3.1's valid ssconf keys (src/Ganeti/Constants.hs
// validSsKeys), hvparams_<hypervisor> for each hypervisor included.
var Keys = []string{
	"cluster_name", "cluster_tags", "file_storage_dir", "shared_file_storage_dir",
	"gluster_storage_dir", "master_candidates", "master_candidates_ips",
	"master_candidates_certs", "master_ip", "master_netdev", "master_netmask",
	"master_node", "node_list", "node_primary_ips", "node_secondary_ips",
	"node_vm_capable", "offline_nodes", "online_nodes", "primary_ip_family",
	"instance_list", "release_version", "hypervisor_list", "maintain_node_health",
	"uid_pool", "nodegroups", "networks", "enabled_user_shutdown", "ssh_ports",
	"hvparams_kvm", "hvparams_xen-pvm", "hvparams_xen-hvm", "hvparams_chroot",
	"hvparams_lxc", "hvparams_fake",
}

// Path is the node path of key's file in dataDir.
func Path(dataDir, key string) string { return path.Join(dataDir, "ssconf_"+key) }

// Format is a value as Ganeti writes it: a final newline added to a
// non-empty value that lacks one; an empty value is an empty file.
func Format(value string) []byte {
	if value != "" && !strings.HasSuffix(value, "\n") {
		value += "\n"
	}
	return []byte(value)
}

// CheckSize refuses a value whose file would exceed MaxSize.
func CheckSize(value string) error {
	if n := len(Format(value)); n > MaxSize {
		return fmt.Errorf("the value has %d bytes; at most %d are allowed", n, MaxSize)
	}
	return nil
}

// Lines splits a list value (node_list, node_primary_ips, ...) into its
// entries: one a line, surrounding space trimmed, empty lines dropped.
func Lines(value string) []string {
	var out []string
	for _, l := range strings.Split(value, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// Value is a file's content as Ganeti reads it: trailing newlines removed.
func Value(data []byte) string { return strings.TrimRight(string(data), "\n") }

// ErrTooLarge is returned by Read for a file larger than MaxSize.
var ErrTooLarge = errors.New("larger than 128 KiB")

// Read reads an ssconf file at the real path p, at most MaxSize bytes.
func Read(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return "", err
	}
	if len(data) > MaxSize {
		return "", fmt.Errorf("%s: %w", p, ErrTooLarge)
	}
	return Value(data), nil
}
