package clusterlab

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/nodejoin/nodejoin/qa/harness"
)

// Fingerprint runs `ssh-keygen -lf path` in h and returns the SHA256:...
// fingerprint it prints.
func Fingerprint(ctx context.Context, h *harness.Host, path string) (string, error) {
	r := Run(ctx, h, nil, "ssh-keygen", "-lf", path)
	if !r.OK() {
		return "", fmt.Errorf("%s: ssh-keygen -lf %s: %s", h.Name, path, r)
	}
	f := strings.Fields(r.Stdout)
	if len(f) < 2 || !strings.HasPrefix(f[1], "SHA256:") {
		return "", fmt.Errorf("%s: ssh-keygen -lf %s printed %q", h.Name, path, r.Stdout)
	}
	return f[1], nil
}

// Stat returns "mode owner:group" of each path in h, from stat(1).
func Stat(ctx context.Context, h *harness.Host, paths ...string) (map[string]string, error) {
	r := Run(ctx, h, nil, append([]string{"stat", "-c", "%n %a %U:%G"}, paths...)...)
	if !r.OK() {
		return nil, fmt.Errorf("%s: stat: %s", h.Name, r)
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 {
			m[f[0]] = f[1] + " " + f[2]
		}
	}
	return m, nil
}

// Ssconf returns h's ssconf files by key (the part after "ssconf_").
func Ssconf(h *harness.Host) (map[string]string, error) {
	files, err := filepath.Glob(h.Path("/var/lib/ganeti/ssconf_*"))
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		m[strings.TrimPrefix(filepath.Base(f), "ssconf_")] = string(b)
	}
	return m, nil
}

// SSHAsCluster runs argv on node over ssh from master as an operator of the
// cluster does: the cluster known_hosts (/var/lib/ganeti/known_hosts) under
// the cluster name as HostKeyAlias, with strict host key checking.
func (l *Lab) SSHAsCluster(ctx context.Context, node *harness.Host, argv ...string) Result {
	return Run(ctx, l.Master, nil, append([]string{"ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=/var/lib/ganeti/known_hosts", "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "HostKeyAlias=" + ClusterName, "-o", "ConnectTimeout=5", "-o", "ControlPath=none",
		"root@" + node.Name}, argv...)...)
}

// NodedVersion asks node's noded for /version from master with curl over
// mutual TLS: master's client.pem as the client certificate, and the
// server's key pinned to the cluster certificate's (curl's --pinnedpubkey;
// -k only skips the name check, which a cluster certificate cannot pass).
func (l *Lab) NodedVersion(ctx context.Context, node *harness.Host) (string, error) {
	pin, err := SPKIPin(l.Master.Path("/var/lib/ganeti/server.pem"))
	if err != nil {
		return "", err
	}
	r := Run(ctx, l.Master, nil, "curl", "-sS", "--max-time", "5", "-k", "--pinnedpubkey", pin,
		"--cert", "/var/lib/ganeti/client.pem", "https://"+node.Name+":1811/version")
	if !r.OK() {
		return "", fmt.Errorf("curl https://%s:1811/version: %s", node.Name, strings.TrimSpace(r.Stderr))
	}
	return r.Stdout, nil
}

// SPKIPin returns curl's sha256//... pin of the certificate in a PEM file.
func SPKIPin(pemFile string) (string, error) {
	b, err := os.ReadFile(pemFile)
	if err != nil {
		return "", err
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return "", fmt.Errorf("%s: no certificate", pemFile)
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return "", fmt.Errorf("%s: %w", pemFile, err)
		}
		sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
		return "sha256//" + base64.StdEncoding.EncodeToString(sum[:]), nil
	}
}

// NodeTrees are the node paths a join may touch; TreeHash covers them.
var NodeTrees = []string{"/etc/ssh", "/root", "/var/lib/ganeti", "/etc/nodejoin", "/var/lib/nodejoin"}

// TreeHash hashes every file, directory and link under NodeTrees in h:
// path, mode, owner and content. Equal hashes mean an unchanged node.
// skip names node paths to leave out (e.g. a file the test itself wrote).
func TreeHash(h *harness.Host, skip ...string) (string, error) {
	lines, err := Tree(h, skip...)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(sum[:]), nil
}

// Tree lists every entry under NodeTrees in h as "path mode uid:gid sha256",
// sorted, for a diff when two TreeHash values differ.
func Tree(h *harness.Host, skip ...string) ([]string, error) {
	var lines []string
	for _, top := range NodeTrees {
		base := h.Path(top)
		err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(base, p)
			node := filepath.Join(top, rel)
			for _, s := range skip {
				if node == s {
					return nil
				}
			}
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			sum := "-"
			if fi.Mode().IsRegular() {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				s := sha256.Sum256(b)
				sum = hex.EncodeToString(s[:8])
			}
			lines = append(lines, fmt.Sprintf("%s %v %s %s", node, fi.Mode(), owner(fi), sum))
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	sort.Strings(lines)
	return lines, nil
}

func owner(fi fs.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("%d:%d", st.Uid, st.Gid)
	}
	return "?"
}
