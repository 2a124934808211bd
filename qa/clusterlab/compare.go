package clusterlab

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/nodejoin/nodejoin/qa/harness"
)

// CompareTrees are the node paths a node-side tool writes, copied for each
// private run and compared afterwards.
var CompareTrees = []string{"/etc/ssh", "/root", "/var/lib/ganeti", "/etc/nodejoin", "/var/lib/nodejoin"}

// Generated are the files a tool makes anew on each run (a fresh root key
// pair, a client certificate signed on the node): their content cannot be
// equal between two runs, so Shape describes them instead (type, size,
// subject, signer).
var Generated = regexp.MustCompile(`^(/root/\.ssh/id_[a-z0-9]+(\.pub)?|/var/lib/ganeti/client\.pem)$`)

// backupName matches Ganeti's backup suffix (utils.CreateBackup:
// NAME.backup-YYYY-MM-DD_HH_MM_SS.RANDOM), which differs on every run.
var backupName = regexp.MustCompile(`\.backup-\d{4}-\d\d-\d\d_\d\d_\d\d_\d\d\.[^/]+$`)

// restartStub is what a private run puts in place of the node's service
// commands (Ganeti's daemon-util, the sshd restart of node.json): it logs
// its name and arguments to /run/nj-cmp-out/restarts.log and does nothing
// else, so that a tool run on a copy restarts no daemon of the host.
const restartStub = `#!/bin/sh
# A service command of a nodejoin QA comparison run: log, do nothing.
echo "$(basename "$0") $*" >> /run/nj-cmp-out/restarts.log
`

// PrivateRun is what a tool did in a private copy of a host's trees.
type PrivateRun struct {
	Dir      string // the copy, as a path in the host
	Result   Result
	Restarts []string // service commands called, in order
}

// StubDir holds the stubs in a host, off PATH: RestartStub is the sshd
// restart command a comparison run's node.json names.
const (
	StubDir     = "/tmp/nj-cmp/stubs"
	RestartStub = StubDir + "/sshd-restart"
)

// PreparePrivateTree copies h's CompareTrees to /tmp/nj-cmp/name in h (the
// host's own tmpfs) and writes the stubs the private runs use.
func PreparePrivateTree(ctx context.Context, h *harness.Host, name string) error {
	script := `set -eu
d=/tmp/nj-cmp/$1
mkdir -p "$d/out" ` + StubDir + `
for p in ` + strings.Join(CompareTrees, " ") + `; do
	mkdir -p "$d$(dirname "$p")"
	cp -a "$p" "$d$p"
done`
	if r := Run(ctx, h, nil, "sh", "-c", script, "sh", name); !r.OK() {
		return fmt.Errorf("%s: copying the trees: %s", h.Name, r)
	}
	for _, stub := range []string{StubDir + "/daemon-util", RestartStub} {
		if err := os.WriteFile(h.Path(stub), []byte(restartStub), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// RunPrivate runs argv in h in a private mount namespace where the copy
// /tmp/nj-cmp/name holds every CompareTrees path, and Ganeti's daemon-util
// is the logging stub: the tool sees a node as it was when the copy was
// made, and neither the host's files nor its daemons are touched. stdin is
// the document; it travels on standard input only.
func RunPrivate(ctx context.Context, h *harness.Host, name string, stdin []byte, argv ...string) PrivateRun {
	d := "/tmp/nj-cmp/" + name
	script := `set -eu
d=$1; shift
for p in ` + strings.Join(CompareTrees, " ") + `; do mount --bind "$d$p" "$p"; done
mkdir -p /run/nj-cmp-out
mount --bind "$d/out" /run/nj-cmp-out
mount --bind ` + StubDir + `/daemon-util "$(realpath /usr/lib/ganeti/daemon-util)"
exec "$@"`
	args := append([]string{"unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", d}, argv...)
	r := Run(ctx, h, stdin, args...)
	pr := PrivateRun{Dir: d, Result: r}
	if b, err := os.ReadFile(h.Path(d + "/out/restarts.log")); err == nil {
		pr.Restarts = strings.Split(strings.TrimSpace(string(b)), "\n")
		_ = os.Remove(h.Path(d + "/out/restarts.log"))
	}
	return pr
}

// Entry is one path of a tree: mode, owner and content, or for a
// Generated file its Shape.
type Entry struct {
	Mode, Owner, Content string
	// Text is the content of a public file (Public), for a diff.
	Text string
}

// Public are the files with nothing secret in them, whose content a
// comparison may show.
var Public = regexp.MustCompile(`(/authorized_keys|\.pub|/ssconf_[a-z0-9_]+|/known_hosts|/node\.json)$`)

// PrivateTree reads the copy /tmp/nj-cmp/name of h, keyed by node path,
// with Ganeti's backup suffixes replaced by ".backup-*". A path that has
// more than one backup gets "#2", "#3"... in the order of their names.
func PrivateTree(h *harness.Host, name string) (map[string]Entry, error) {
	base := h.Path("/tmp/nj-cmp/" + name)
	tree := map[string]Entry{}
	for _, top := range CompareTrees {
		err := filepath.WalkDir(base+top, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			np := strings.TrimPrefix(p, base)
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			e := Entry{Mode: fi.Mode().String(), Owner: owner(fi)}
			if fi.Mode().IsRegular() {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				if Public.MatchString(np) && !backupName.MatchString(np) && !Generated.MatchString(np) {
					e.Text = string(b)
				}
				if Generated.MatchString(np) {
					e.Content = Shape(np, b)
				} else {
					sum := sha256.Sum256(b)
					e.Content = hex.EncodeToString(sum[:8])
				}
				if np == "/root/.ssh/authorized_keys" {
					e.Content, e.Text = ownKeyReplaced(base, b)
				}
			}
			key := backupName.ReplaceAllString(np, ".backup-*")
			for i := 2; ; i++ {
				if _, dup := tree[key]; !dup {
					break
				}
				key = backupName.ReplaceAllString(np, ".backup-*") + fmt.Sprintf("#%d", i)
			}
			tree[key] = e
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return tree, nil
}

// ownKeyReplaced returns the hash and text of an authorized_keys file with
// the node's own root public key (generated, so different on every run)
// replaced by a placeholder, and its lines sorted: sshd reads the file as a
// set, and Ganeti authorizes the key it made before the master's keys,
// ours after them (doc/ganeti.md).
func ownKeyReplaced(base string, b []byte) (sum, text string) {
	text = string(b)
	pubs, _ := filepath.Glob(base + "/root/.ssh/id_*.pub")
	for _, p := range pubs {
		pb, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if f := strings.Fields(string(pb)); len(f) >= 2 {
			text = strings.ReplaceAll(text, f[1], "<this node's "+filepath.Base(p)+">")
		}
	}
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	sort.Strings(lines)
	text = strings.Join(lines, "\n") + "\n"
	s := sha256.Sum256([]byte(text))
	return hex.EncodeToString(s[:8]), text
}

// Shape describes a generated file by what must be equal between two runs:
// an SSH key's type and size, a certificate's key, subject and issuer.
func Shape(path string, b []byte) string {
	if strings.HasSuffix(path, ".pub") {
		pk, comment, _, _, err := ssh.ParseAuthorizedKey(b)
		if err != nil {
			return "not a public key: " + err.Error()
		}
		return fmt.Sprintf("public %s %s comment %q", pk.Type(), keySize(pk), comment)
	}
	if strings.HasSuffix(path, ".pem") {
		return pemShape(b)
	}
	k, err := ssh.ParseRawPrivateKey(b)
	if err != nil {
		return "not a private key: " + err.Error()
	}
	return "private " + cryptoKeyShape(k)
}

func keySize(pk ssh.PublicKey) string {
	ck, ok := pk.(ssh.CryptoPublicKey)
	if !ok {
		return "?"
	}
	return cryptoKeyShape(ck.CryptoPublicKey())
}

func cryptoKeyShape(k any) string {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PrivateKey:
		return "ECDSA " + k.Curve.Params().Name
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	default:
		return fmt.Sprintf("%T", k)
	}
}

func pemShape(b []byte) string {
	var parts []string
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		switch blk.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				parts = append(parts, "bad certificate")
				continue
			}
			parts = append(parts, fmt.Sprintf("certificate key %s subject %q issuer %q", cryptoKeyShape(c.PublicKey), c.Subject.String(), c.Issuer.String()))
		default:
			k, err := parsePrivateKey(blk)
			if err != nil {
				parts = append(parts, blk.Type+" unreadable")
				continue
			}
			parts = append(parts, blk.Type+" "+cryptoKeyShape(k))
		}
	}
	return strings.Join(parts, "; ")
}

func parsePrivateKey(blk *pem.Block) (any, error) {
	if k, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	return x509.ParseECPrivateKey(blk.Bytes)
}

// DiffTrees lists how tree b differs from tree a, one line per path,
// sorted: "only in A: path", "only in B: path", or "path: what A has | what
// B has". A path for which same(path, a's entry, b's entry) is true is left
// out (a difference on purpose, which the caller lists).
func DiffTrees(nameA string, a map[string]Entry, nameB string, b map[string]Entry, same func(p string, ea, eb Entry) bool) []string {
	var d []string
	for p, ea := range a {
		eb, ok := b[p]
		switch {
		case ok && ea != eb && same != nil && same(p, ea, eb):
		case !ok:
			d = append(d, fmt.Sprintf("only in %s: %s %s %s", nameA, p, ea.Mode, ea.Owner))
		case ea != eb:
			line := fmt.Sprintf("%s: %s %s | %s %s", p, nameA, ea, nameB, eb)
			if ea.Text != eb.Text {
				line += "\n" + textDiff(nameA, ea.Text, nameB, eb.Text)
			}
			d = append(d, line)
		}
	}
	for p, eb := range b {
		if _, ok := a[p]; !ok {
			d = append(d, fmt.Sprintf("only in %s: %s %s %s", nameB, p, eb.Mode, eb.Owner))
		}
	}
	sort.Strings(d)
	return d
}

// textDiff shows the lines of a public file only one side has.
func textDiff(nameA, a, nameB, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	has := func(ls []string, x string) bool {
		for _, l := range ls {
			if l == x {
				return true
			}
		}
		return false
	}
	var d []string
	for _, l := range la {
		if !has(lb, l) {
			d = append(d, fmt.Sprintf("    only %s: %q", nameA, l))
		}
	}
	for _, l := range lb {
		if !has(la, l) {
			d = append(d, fmt.Sprintf("    only %s: %q", nameB, l))
		}
	}
	if len(d) == 0 {
		d = append(d, fmt.Sprintf("    same lines, other order or line ends: %q | %q", a, b))
	}
	return strings.Join(d, "\n")
}

// String shows an entry in a diff line.
func (e Entry) String() string { return strings.TrimSpace(e.Mode + " " + e.Owner + " " + e.Content) }
