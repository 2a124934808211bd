// Package cmd_test keeps the layers of doc/design.md ("Layout") from what
// the programs really link: a master program links nothing under
// internal/node, a node-side program nothing under internal/master, and no
// package under internal/ imports the programs' frame (cmd/...). The
// golangci-lint depguard rules say the same per file; this test asks the
// go command, so an import that comes in through a third package counts.
package cmd_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/nodejoin/nodejoin/"

// side says where each program runs. A new program must be added here.
var side = map[string]string{
	"prepare-node-join": "node",
	"node-daemon-setup": "node",
	"noded":             "node",
	"node-join":         "node",
	"node-add":          "master",
	"cluster-init":      "master",
	"join-service":      "master",
	"callback-setup":    "node",
	"callback-grant":    "master",
	"join-advertise":    "node", // node and master alike: a master is a Ganeti node too
	"node-list":         "master",
	// leave (node removal)
	"node-cleanup": "node",
	"node-remove":  "master",
	// render-cloud-config
	"render-cloud-config": "master",
	// rotation
	"ssh-update":    "node",
	"ssl-update":    "node",
	"cluster-renew": "master",
}

// forbidden is, for each side, the prefixes of packages its programs may
// not link. A node-side program starts as a whole process at each join
// step: a general JSON Schema validator's package init (v5 compiles five
// drafts' metaschemas) would be most of an unchanged rerun; the schemas
// package has its own (internal/jsonschema).
var forbidden = map[string][]string{
	"node":   {module + "internal/master/", "github.com/santhosh-tekuri/jsonschema/"},
	"master": {module + "internal/node/", module + "cmd/internal/nodeprog"},
}

// goList runs go list with args in the module and returns its lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

func TestProgramsLinkOneSide(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command on the PATH")
	}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var progs []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != "internal" {
			if _, err := os.Stat(filepath.Join(e.Name(), "main.go")); err == nil {
				progs = append(progs, e.Name())
			}
		}
	}
	if len(progs) == 0 {
		t.Fatal("no programs found under cmd/")
	}
	for _, prog := range progs {
		s, ok := side[prog]
		if !ok {
			t.Errorf("cmd/%s: not listed in side: say whether it runs on a node or on the master", prog)
			continue
		}
		for _, dep := range goList(t, "-deps", "./cmd/"+prog) {
			for _, bad := range forbidden[s] {
				if strings.HasPrefix(dep, bad) {
					t.Errorf("cmd/%s (%s program) links %s", prog, s, strings.TrimPrefix(dep, module))
				}
			}
		}
	}
}

// Every package under internal/: a shared one imports neither side, a side
// imports nothing of the other, and none imports cmd/... (the CLI frame).
func TestInternalLayers(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command on the PATH")
	}
	for _, l := range goList(t, "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./internal/...") {
		f := strings.Fields(l)
		pkg, imports := strings.TrimPrefix(f[0], module), f[1:]
		var deny []string
		switch {
		case strings.HasPrefix(pkg, "internal/node/"):
			deny = []string{"internal/master/"}
		case strings.HasPrefix(pkg, "internal/master/"):
			deny = []string{"internal/node/"}
		default:
			deny = []string{"internal/node/", "internal/master/"}
		}
		deny = append(deny, "cmd/")
		for _, imp := range imports {
			imp, ok := strings.CutPrefix(imp, module)
			if !ok {
				continue
			}
			if slices.ContainsFunc(deny, func(d string) bool { return strings.HasPrefix(imp, d) }) {
				t.Errorf("%s imports %s", pkg, imp)
			}
		}
	}
}
