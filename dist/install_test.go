package dist_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nodejoin/nodejoin/internal/master/install"
)

// TestInstallProgramsArePackaged: the programs node-add --install puts on
// a node are exactly the nodejoin-node package's.
func TestInstallProgramsArePackaged(t *testing.T) {
	var node []string
	for _, p := range readPrograms(t) {
		if p.pkg == "nodejoin-node" {
			node = append(node, p.name)
		}
	}
	if !slices.Equal(install.Programs, node) {
		t.Errorf("internal/master/install.Programs is %q, tools/programs' nodejoin-node has %q", install.Programs, node)
	}
}

// TestMasterCarriesNodePrograms: nodejoin-master ships every node-side
// program in install.DefaultDir, mode 0755, the same bytes as
// nodejoin-node's /usr/bin ones, for node-add --install.
func TestMasterCarriesNodePrograms(t *testing.T) {
	dir := built(t)
	pkgs := debs(t, dir)
	master, node := t.TempDir(), t.TempDir()
	for d, pkg := range map[string]string{master: "nodejoin-master", node: "nodejoin-node"} {
		if out, err := exec.Command("dpkg-deb", "--extract", pkgs[pkg], d).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb --extract %s: %v\n%s", pkg, err, out)
		}
	}
	for _, p := range install.Programs {
		carried := filepath.Join(master, install.DefaultDir, p)
		fi, err := os.Stat(carried)
		if err != nil {
			t.Errorf("nodejoin-master: %v", err)
			continue
		}
		if fi.Mode() != 0o755 {
			t.Errorf("nodejoin-master: %s%s has mode %v, want 0755", install.DefaultDir, p, fi.Mode())
		}
		a, _ := os.ReadFile(carried)
		b, err := os.ReadFile(filepath.Join(node, "usr", "bin", p))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("nodejoin-master's %s/%s is not nodejoin-node's /usr/bin/%s (%v)", install.DefaultDir, p, p, err)
		}
	}
}
