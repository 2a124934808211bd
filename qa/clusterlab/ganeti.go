package clusterlab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/nodejoin/nodejoin/qa/harness"
)

// GanetiClusterName is the name gnt-cluster init gives the Ganeti lab's
// cluster; every host resolves it (/etc/hosts) to GanetiMasterIP.
const GanetiClusterName = "ganeti.nodejoin.test"

// GanetiTools are Ganeti's node-side tools that ours replace on a node and
// that gnt-node add runs, in that order (ssh-update from the master's node
// daemon, public_keys override).
var GanetiTools = []string{"prepare-node-join", "node-daemon-setup", "ssh-update"}

// GanetiRenewTools are the others ours replace: gnt-cluster renew-crypto
// runs ssh-update (--new-ssh-keys) and ssl-update (--new-node-certificates).
var GanetiRenewTools = []string{"ssl-update"}

// GanetiNodeConfig is node.json on the hosts of a Ganeti lab: only sshd's
// check and restart, which a lab host does with the harness's scripts. The
// node daemon restart is left to the default, which must be Ganeti's own
// sequence on a node where Ganeti is installed.
var GanetiNodeConfig = map[string]any{
	"sshd_check_command":   []string{"nj-check-sshd"},
	"sshd_restart_command": []string{"nj-restart-sshd"},
}

// GanetiMissing says what of Debian's ganeti package this machine lacks,
// or "" when it has it all.
func GanetiMissing() string {
	var miss []string
	for _, p := range []string{"/usr/sbin/gnt-cluster", "/usr/sbin/gnt-node", "/usr/sbin/ganeti-noded",
		"/usr/lib/ganeti/daemon-util", "/usr/lib/ganeti/prepare-node-join", "/usr/lib/ganeti/node-daemon-setup",
		"/usr/lib/ganeti/ssh-update", "/usr/lib/ganeti/ssl-update"} {
		if _, err := os.Stat(p); err != nil {
			miss = append(miss, p)
		}
	}
	if len(miss) == 0 {
		return ""
	}
	return "missing " + strings.Join(miss, ", ") + " (Debian's ganeti package: tools/install-deps.sh installs it)"
}

// GanetiMasterIP is the cluster's master IP: the lab subnet's last host
// address, which no lab host has.
func GanetiMasterIP(l *Lab) netip.Addr {
	a := l.Subnet.Addr().As4()
	a[3] = 254
	return netip.AddrFrom4(a)
}

// SetUpGanetiHosts prepares every host of l for Ganeti: GanetiNodeConfig as
// node.json, the cluster name in /etc/hosts, and master's root RSA key
// (made by gnt-cluster init, so call this after it) in the nodes'
// authorized_keys, as an operator does before `gnt-node add`.
func (l *Lab) SetUpGanetiHosts() error {
	conf, _ := json.MarshalIndent(GanetiNodeConfig, "", "  ")
	for _, h := range l.Hosts() {
		if err := os.WriteFile(h.Path("/etc/nodejoin/node.json"), append(conf, '\n'), 0o644); err != nil {
			return err
		}
		// Appended, not replaced: /etc/hosts is a bind mount of this file.
		f, err := os.OpenFile(h.Path("/etc/hosts"), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(f, "%s\t%s\n", GanetiMasterIP(l), GanetiClusterName)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// AuthorizeGanetiMaster puts master's root RSA key, which gnt-cluster init
// made, into node's authorized_keys, and node's present host keys under its
// name into the cluster's known_hosts on master, which Ganeti's ssh uses
// for the first connection: the operator has checked them.
func (l *Lab) AuthorizeGanetiMaster(node *harness.Host) error {
	pub, err := os.ReadFile(l.Master.Path("/root/.ssh/id_rsa.pub"))
	if err != nil {
		return err
	}
	if err := appendFile(node.Path("/root/.ssh/authorized_keys"), pub); err != nil {
		return err
	}
	kh, err := node.KnownHosts()
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(string(kh)), "\n") {
		f := strings.Fields(line) // ip type key
		fmt.Fprintf(&b, "%s %s %s\n", node.Name, f[1], f[2])
	}
	return appendFile(l.Master.Path("/var/lib/ganeti/known_hosts"), []byte(b.String()))
}

func appendFile(p string, data []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// captureScript is nj-capture-TOOL: what a node runs in place of Ganeti's
// TOOL. It keeps the document Ganeti's master sent, in the host's /run
// (mode 0600 in a 0700 directory: it holds private keys), then runs our
// TOOL on it.
func captureScript(tool string) string {
	return `#!/bin/sh
# nj-capture-` + tool + `: Ganeti's ` + tool + ` on a nodejoin QA node. Keeps the
# document on stdin in /run/nj-capture, then runs nodejoin's ` + tool + ` on it.
set -eu
umask 077
mkdir -p /run/nj-capture
n=1
while [ -e /run/nj-capture/` + tool + `.$n.json ]; do n=$((n + 1)); done
cat > /run/nj-capture/` + tool + `.$n.json
exec /usr/local/sbin/` + tool + ` "$@" < /run/nj-capture/` + tool + `.$n.json
`
}

// UseOurGanetiTools makes node run our GanetiTools and GanetiRenewTools
// where Ganeti's master calls its own (/usr/lib/ganeti/TOOL): each is
// bind-mounted, in the node's mount namespace only, by a wrapper that keeps
// the document (CapturedDocument).
func UseOurGanetiTools(ctx context.Context, node *harness.Host) error {
	for _, tool := range append(append([]string(nil), GanetiTools...), GanetiRenewTools...) {
		if err := os.WriteFile(node.Path("/usr/local/sbin/nj-capture-"+tool), []byte(captureScript(tool)), 0o755); err != nil {
			return err
		}
		r := Run(ctx, node, nil, "sh", "-c", `mount --bind "/usr/local/sbin/nj-capture-$1" "$(realpath "/usr/lib/ganeti/$1")"`, "sh", tool)
		if !r.OK() {
			return fmt.Errorf("%s: bind-mounting ours over Ganeti's %s: %s", node.Name, tool, r)
		}
	}
	return nil
}

// CapturedDocument returns the nth (from 1) document Ganeti's master sent
// to tool on node. It holds secrets: never print it.
func CapturedDocument(node *harness.Host, tool string, n int) ([]byte, error) {
	return os.ReadFile(node.Path("/run/nj-capture/" + tool + "." + strconv.Itoa(n) + ".json"))
}

// CapturedDocuments is how many documents Ganeti's master has sent to tool
// on node so far.
func CapturedDocuments(node *harness.Host, tool string) int {
	m, _ := filepath.Glob(node.Path("/run/nj-capture/" + tool + ".*.json"))
	return len(m)
}

// Redact replaces in s every string value of the JSON documents that is
// long enough to be key material, so that a tool's output that echoes its
// input (Ganeti's tools log their raw input when it fails to validate) can
// go to a test log.
func Redact(s string, docs ...[]byte) string {
	var secrets []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			if len(v) >= 16 {
				secrets = append(secrets, v, strings.TrimSpace(v))
				for _, line := range strings.Split(v, "\n") {
					if len(line) >= 16 {
						secrets = append(secrets, line)
					}
				}
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	for _, d := range docs {
		var v any
		if json.Unmarshal(d, &v) == nil {
			walk(v)
		}
	}
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	for _, x := range secrets {
		s = strings.ReplaceAll(s, x, "<redacted>")
	}
	return s
}

// GanetiDaemons returns the Ganeti daemons running in h, "name pid" (pid as
// the machine sees it), from /proc: processes in h's pid namespace.
func GanetiDaemons(h *harness.Host) ([]string, error) {
	want, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", h.InitPID()))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range ganetiProcesses() {
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", p.pid)); err == nil && ns == want {
			out = append(out, fmt.Sprintf("%s %d", p.name, p.pid))
		}
	}
	sort.Strings(out)
	return out, nil
}

// GanetiOnMachine returns the Ganeti daemons that run in this process's own
// pid namespace, i.e. on the machine rather than in a lab host.
func GanetiOnMachine() []string {
	self, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, p := range ganetiProcesses() {
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", p.pid)); err == nil && ns == self {
			out = append(out, fmt.Sprintf("%s %d", p.name, p.pid))
		}
	}
	return out
}

// ProcessGone reports that pid no longer runs (or is a zombie).
func ProcessGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}

type proc struct {
	name string
	pid  int
}

var ganetiDaemon = regexp.MustCompile(`(^|/)ganeti-(noded|confd|wconfd|rapi|luxid|kvmd|mond|metad)$`)

// ganetiProcesses lists processes whose command (argv[0], or argv[1] for
// the Python daemons run by python3) is a Ganeti daemon.
func ganetiProcesses() []proc {
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var out []proc
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		for i, a := range args {
			if i > 1 {
				break
			}
			if m := ganetiDaemon.FindString(a); m != "" {
				pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
				out = append(out, proc{name: strings.TrimPrefix(m, "/"), pid: pid})
				break
			}
		}
	}
	return out
}

// errNoGanetiDaemons is returned when a host runs none.
var errNoGanetiDaemons = errors.New("no Ganeti daemon runs")

// GanetiPIDs returns the machine's pids of the Ganeti daemons in h.
func GanetiPIDs(h *harness.Host) ([]int, error) {
	ds, err := GanetiDaemons(h)
	if err != nil {
		return nil, err
	}
	if len(ds) == 0 {
		return nil, fmt.Errorf("%s: %w", h.Name, errNoGanetiDaemons)
	}
	var pids []int
	for _, d := range ds {
		pid, _ := strconv.Atoi(strings.Fields(d)[1])
		pids = append(pids, pid)
	}
	return pids, nil
}
