package harness

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// sshdPath is Debian's sshd; it must be called by its absolute path because
// sshd re-executes itself (on SIGHUP and for each connection) by argv[0].
const sshdPath = "/usr/sbin/sshd"

// tools the harness runs; ip is probed separately with a real `ip netns add`.
var tools = []string{"ip", "unshare", "nsenter", "setpriv", "mount", "ssh", "ssh-keygen", "ssh-keyscan"}

var (
	probeOnce sync.Once
	probeMiss string // "" when the machine can run labs
)

// Require skips the test, with one line saying what is missing, unless this
// process is root, the tools are installed, and `ip netns add` works.
func Require(t TB) {
	t.Helper()
	probeOnce.Do(func() { probeMiss = probe() })
	if probeMiss != "" {
		t.Skip("qa: needs root, ip(8), unshare(1) and sshd(8): " + probeMiss)
	}
}

func probe() string {
	var miss []string
	if os.Geteuid() != 0 {
		miss = append(miss, fmt.Sprintf("not root (euid %d)", os.Geteuid()))
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			miss = append(miss, tool+" not found")
		}
	}
	if fi, err := os.Stat(sshdPath); err != nil || fi.Mode()&0o111 == 0 {
		miss = append(miss, sshdPath+" not found (apt-get install openssh-server)")
	}
	if len(miss) > 0 {
		return strings.Join(miss, ", ")
	}
	// Named like a lab namespace, so that Sweep removes it if we die here.
	ns := newPrefix() + "-probe"
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		return "ip netns add failed: " + firstLine(out, err)
	}
	_ = exec.Command("ip", "netns", "del", ns).Run()
	return ""
}

// firstLine keeps a skip or error message on one line.
func firstLine(out []byte, err error) string {
	s := strings.TrimSpace(string(out))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if s == "" {
		return err.Error()
	}
	return s
}
