package scenarios

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/master/install"
	"github.com/nodejoin/nodejoin/qa/clusterlab"
	"github.com/nodejoin/nodejoin/qa/harness"
)

// packaged lists what the packages put on a system, for the check that the
// machine itself got none of it.
var packaged = []string{
	"/usr/bin/prepare-node-join", "/usr/bin/node-daemon-setup", "/usr/bin/noded",
	"/usr/bin/cluster-init", "/usr/bin/node-add", "/usr/lib/systemd/system/noded.service",
	"/etc/default/nodejoin-node", "/etc/systemd/system/multi-user.target.wants/noded.service",
	"/usr/share/man/man8/noded.8.gz", "/usr/lib/nodejoin/node/noded",
	"/usr/share/bash-completion/completions/node-add",
}

// Scenario: the Debian packages installed with dpkg -i, nodejoin-master on
// master and nodejoin-node on a node, join the node with the installed
// programs only (the hosts' bin dir holds none); installing again (an
// upgrade to the same version) restarts neither sshd nor noded, unless
// /etc/default/nodejoin-node asks for noded's restart; removing the package
// stops noded and keeps the cluster's files. The machine itself gets none
// of the packages' files.
func TestDebianPackagesJoin(t *testing.T) {
	harness.Require(t)
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("qa: needs dpkg-deb(1) to build the packages")
	}
	t.Parallel()
	debs, err := clusterlab.BuildPackages(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	l := &clusterlab.Lab{Lab: harness.New(t, harness.Options{Nodes: 2})}
	node, bare := l.Nodes[0], l.Nodes[1]
	conf, _ := json.Marshal(clusterlab.NodeConfig)
	for h, pkg := range map[*harness.Host]string{l.Master: "nodejoin-master", node: "nodejoin-node"} {
		if err := os.WriteFile(h.Path("/etc/nodejoin/node.json"), conf, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := clusterlab.InstallPackages(ctx, h, debs[pkg]); err != nil {
			t.Fatal(err)
		}
		r := must(t, "dpkg-query", clusterlab.Run(ctx, h, nil, "dpkg-query", "-W", "-f", "${Status}", pkg))
		if r.Stdout != "install ok installed" {
			t.Errorf("%s: %s is %q, want installed", h.Name, pkg, r.Stdout)
		}
	}
	for h, progs := range map[*harness.Host][]string{l.Master: {"cluster-init", "node-add"}, node: {"prepare-node-join", "node-daemon-setup", "noded"}} {
		for _, p := range progs {
			r := must(t, "command -v", clusterlab.Run(ctx, h, nil, "sh", "-c", "command -v "+p))
			if got := strings.TrimSpace(r.Stdout); got != "/usr/bin/"+p {
				t.Errorf("%s: %s is %s, want the package's /usr/bin/%s", h.Name, p, got, p)
			}
		}
	}
	if r := clusterlab.Run(ctx, l.Master, nil, "man", "-w", "node-add"); !r.OK() || strings.TrimSpace(r.Stdout) != "/usr/share/man/man8/node-add.8.gz" {
		t.Errorf("master: man -w node-add: %s", r)
	}

	must(t, "cluster-init", l.Init(ctx))
	if err := l.TrustHostKeys(node); err != nil {
		t.Fatal(err)
	}
	must(t, "node-add", l.NodeAdd(ctx, node.Name))
	checkJoined(t, ctx, l, node)

	// node-add --install from the package's copy of the node-side
	// programs: bare (no package, no programs) gets them and joins; node,
	// whose package has the master's version, gets nothing.
	if err := os.WriteFile(bare.Path("/etc/nodejoin/node.json"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.TrustHostKeys(bare); err != nil {
		t.Fatal(err)
	}
	r := must(t, "node-add --install", l.NodeAdd(ctx, "--install", "--output", "json", bare.Name, node.Name))
	got := map[string]int{}
	for line := range strings.Lines(r.Stdout) {
		var res struct {
			Node      string            `json:"node"`
			Installed []json.RawMessage `json:"installed"`
		}
		if json.Unmarshal([]byte(line), &res) == nil && res.Node != "" {
			got[res.Node] = len(res.Installed)
		}
	}
	if got[bare.Name] != len(install.Programs) || got[node.Name] != 0 {
		t.Errorf("node-add --install installed %v programs, want %d on %s and none on %s:\n%s", got, len(install.Programs), bare.Name, node.Name, r.Stdout)
	}
	for _, p := range []string{"prepare-node-join", "noded", "callback-setup"} {
		// The package's /usr is the master's own overlay: read it inside.
		want := strings.Fields(must(t, "sha256sum", clusterlab.Run(ctx, l.Master, nil, "sha256sum", "/usr/lib/nodejoin/node/"+p)).Stdout)[0]
		r := must(t, "sha256sum", clusterlab.Run(ctx, bare, nil, "sha256sum", "/usr/local/sbin/"+p))
		if f := strings.Fields(r.Stdout); len(f) == 0 || f[0] != want {
			t.Errorf("%s: /usr/local/sbin/%s has sha256 %q, want the package's %s", bare.Name, p, r.Stdout, want)
		}
	}
	checkJoined(t, ctx, l, bare)

	// Installing again is an upgrade (postinst configure with the old
	// version): sshd and noded keep running as they were.
	sshd, noded := sshdStarts(node), nodedPID(node)
	if noded == "" {
		t.Fatalf("%s: no noded pid file after the join", node.Name)
	}
	if err := clusterlab.InstallPackages(ctx, node, debs["nodejoin-node"]); err != nil {
		t.Fatal(err)
	}
	if got := sshdStarts(node); got != sshd {
		t.Errorf("%s: reinstalling nodejoin-node restarted sshd (%d starts, were %d)", node.Name, got, sshd)
	}
	if got := nodedPID(node); got != noded {
		t.Errorf("%s: reinstalling nodejoin-node changed noded's pid from %s to %q", node.Name, noded, got)
	}
	// Asked for in /etc/default/nodejoin-node, the upgrade restarts noded.
	must(t, "asking for noded's restart", clusterlab.Run(ctx, node, nil, "sed", "-i",
		"s/^RESTART_NODED_ON_UPGRADE=no$/RESTART_NODED_ON_UPGRADE=yes/", "/etc/default/nodejoin-node"))
	if err := clusterlab.InstallPackages(ctx, node, debs["nodejoin-node"]); err != nil {
		t.Fatal(err)
	}
	if got := nodedPID(node); got == noded || got == "" {
		t.Errorf("%s: with RESTART_NODED_ON_UPGRADE=yes, noded's pid is %q, want a new one (was %s)", node.Name, got, noded)
	}
	if got := sshdStarts(node); got != sshd {
		t.Errorf("%s: the upgrade restarted sshd (%d starts, were %d)", node.Name, got, sshd)
	}
	if _, err := l.NodedVersion(ctx, node); err != nil {
		t.Errorf("%s: noded after the upgrade: %v", node.Name, err)
	}

	// Removing the package stops noded; the cluster's files stay.
	must(t, "dpkg --remove", clusterlab.Run(ctx, node, nil, "dpkg", "--remove", "nodejoin-node"))
	if pid := nodedPID(node); pid != "" {
		t.Errorf("%s: noded (pid %s) still runs after dpkg --remove", node.Name, pid)
	}
	if _, err := os.Stat(node.Path("/var/lib/ganeti/server.pem")); err != nil {
		t.Errorf("%s: dpkg --remove took the cluster's files: %v", node.Name, err)
	}
	if r := clusterlab.Run(ctx, node, nil, "sh", "-c", "command -v noded"); r.OK() {
		t.Errorf("%s: noded is still on PATH after dpkg --remove: %s", node.Name, r.Stdout)
	}

	for _, p := range packaged {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("the machine itself has %s: a package was installed outside the lab", p)
		}
	}
	out, _ := exec.Command("dpkg-query", "-W", "-f", "${Package} ${Status}\n", "nodejoin-node", "nodejoin-master").Output()
	if strings.Contains(string(out), "installed") {
		t.Errorf("the machine's dpkg database lists the packages:\n%s", out)
	}
}
