package nodestate

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/nodejoin/nodejoin/internal/daemon"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
)

// TestDSARefusalRealOpenSSH asks this machine's own OpenSSH with the
// default command (ssh -Q key) and checks the answer against ssh's list.
func TestDSARefusalRealOpenSSH(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("needs ssh")
	}
	out, err := exec.Command("ssh", "-Q", "key").Output()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := nodeconf.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	got := DSARefusal(cfg)
	if has := slices.Contains(strings.Fields(string(out)), "ssh-dss"); has != (got == "") {
		t.Errorf("ssh -Q key lists ssh-dss: %v; DSARefusal says %q", has, got)
	}
	cfg.SSHQueryKeyCommand = daemon.Builtin("ssh", "-Q", "no-such-query")
	if got := DSARefusal(cfg); !strings.HasPrefix(got, `dsa keys need an OpenSSH that supports them, and asking this node's failed: command "ssh -Q no-such-query" exited `) {
		t.Errorf("failed query: %q", got)
	}
}
