package install

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/nodejoin/nodejoin/internal/master/sshrun"
	"github.com/nodejoin/nodejoin/internal/problem"
)

func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		node, master string
		want         Order
	}{
		{"v1.2.3", "v1.2.3", Same},
		{"", "v1.2.3", Older},
		{"v1.2.2", "v1.2.3", Older},
		{"v1.2.3", "v1.2.3-4-gabcdef0", Older},
		{"v1.2.3-4-gabcdef0", "v1.2.3-10-g0123456", Older},
		{"v1.10.0", "v1.9.9", Newer},
		{"v2.0.0", "v1.99.0-3-gabc1234", Newer},
		{"v1.2.3-dirty", "v1.2.3", Unordered},
		{"v1.2.3-4-gabcdef0", "v1.2.3-4-g0123456", Unordered},
		{"6756adc", "d73bd94", Unordered},
		{"devel", "v1.0.0", Unordered},
		{"6756adc-dirty", "6756adc-dirty", Same},
	} {
		if got := Compare(tc.node, tc.master); got != tc.want {
			t.Errorf("Compare(%q, %q) = %v, want %v", tc.node, tc.master, got, tc.want)
		}
	}
}

// localNode runs the scripts as sshrun does on a node: one shell command
// line (ShellQuote), with PATH set to the "node's" directories.
type localNode struct {
	path    string
	corrupt bool // flip one byte of every standard input, as a broken link would
	runs    int
}

func (l *localNode) Run(ctx context.Context, argv []string, stdin []byte) (*sshrun.Result, error) {
	l.runs++
	if l.corrupt && len(stdin) > 0 {
		stdin = bytes.Clone(stdin)
		stdin[len(stdin)/2] ^= 0x20
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", sshrun.ShellQuote(argv))
	cmd.Env = []string{"PATH=" + l.path}
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := &sshrun.Result{Stdout: out.Bytes(), Stderr: errb.Bytes()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		res.Status = ee.ExitCode()
		err = nil
	}
	return res, err
}

// program is a stand-in for a node-side program: it answers --version.
func program(name, version string) []byte {
	return []byte("#!/bin/sh\necho '" + name + " " + version + "'\n")
}

func source(version string) *Source {
	src := &Source{Dir: "/master/programs", Arch: runtime.GOARCH}
	for _, name := range Programs {
		data := program(name, version)
		sum := sha256.Sum256(data)
		src.Binaries = append(src.Binaries, Binary{Name: name, Data: data, Sum: hex.EncodeToString(sum[:]), Version: version})
	}
	return src
}

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("installs root-owned files: needs root")
	}
}

// node makes a node whose PATH has target (empty) and other first.
func node(t *testing.T) (n *localNode, target, other string) {
	dir := t.TempDir()
	target, other = filepath.Join(dir, "sbin"), filepath.Join(dir, "other")
	for _, d := range []string{target, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &localNode{path: other + ":" + target + ":/usr/bin:/bin"}, target, other
}

func plan(t *testing.T, n *localNode, src *Source, target string, allow bool) (*Plan, error) {
	t.Helper()
	st, err := Handshake(t.Context(), n, target)
	if err != nil {
		t.Fatal(err)
	}
	return MakePlan(src, st, target, allow)
}

func listDir(t *testing.T, dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestInstallMissingThenNothing(t *testing.T) {
	needRoot(t)
	n, target, _ := node(t)
	src := source("v1.2.0")
	p, err := plan(t, n, src, target, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Install) != len(Programs) {
		t.Fatalf("plan installs %d programs, want %d", len(p.Install), len(Programs))
	}
	if err := Apply(t.Context(), n, p); err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, target); !slices.Equal(got, slices.Sorted(slices.Values(Programs))) {
		t.Errorf("target holds %q, want exactly the programs", got)
	}
	for _, b := range src.Binaries {
		fp := filepath.Join(target, b.Name)
		data, err := os.ReadFile(fp)
		if err != nil || !bytes.Equal(data, b.Data) {
			t.Errorf("%s: %q, %v; want the master's bytes", fp, data, err)
		}
		fi, _ := os.Stat(fp)
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != 0o755 || st.Uid != 0 || st.Gid != 0 {
			t.Errorf("%s: mode %v owner %d:%d, want 0755 root:root", fp, fi.Mode(), st.Uid, st.Gid)
		}
		if p.Paths[b.Name] != fp {
			t.Errorf("the plan runs %s from %q, want %s", b.Name, p.Paths[b.Name], fp)
		}
	}
	// The rerun finds every program at the master's version.
	p, err = plan(t, n, src, target, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Install) != 0 {
		t.Errorf("the rerun installs %v, want nothing", p.Install)
	}
	runs := n.runs
	if err := Apply(t.Context(), n, p); err != nil || n.runs != runs {
		t.Errorf("applying an empty plan: %v, %d sessions; want none", err, n.runs-runs)
	}
}

func TestCorruptTransferLeavesNothing(t *testing.T) {
	needRoot(t)
	n, target, other := node(t)
	// The node has an old noded of its own: it must stay as it was.
	old := program("noded", "v1.0.0")
	if err := os.WriteFile(filepath.Join(other, "noded"), old, 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := plan(t, n, source("v1.2.0"), target, false)
	if err != nil {
		t.Fatal(err)
	}
	n.corrupt = true
	err = Apply(t.Context(), n, p)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Apply = %v, want ErrCorrupt", err)
	}
	if !strings.Contains(err.Error(), "/prepare-node-join: received ") || !strings.Contains(err.Error(), "nothing was installed") {
		t.Errorf("error %q does not name the program and what arrived", err)
	}
	if got := listDir(t, target); len(got) != 0 {
		t.Errorf("target holds %q after the refused transfer, want nothing", got)
	}
	if got := listDir(t, other); !slices.Equal(got, []string{"noded"}) {
		t.Errorf("the node's own directory holds %q, want only its noded", got)
	}
	if data, _ := os.ReadFile(filepath.Join(other, "noded")); !bytes.Equal(data, old) {
		t.Errorf("the node's noded changed")
	}
}

// A later program failing after earlier ones were staged takes the staged
// files back: a program half of which arrived is not half installed.
func TestFailureAfterStagingTakesStagedBack(t *testing.T) {
	needRoot(t)
	n, target, _ := node(t)
	src := source("v1.2.0")
	p, err := plan(t, n, src, target, false)
	if err != nil {
		t.Fatal(err)
	}
	p.Install[2].binary = &Binary{Name: "noded", Data: []byte("x"), Sum: src.Binaries[2].Sum}
	if err := Apply(t.Context(), n, p); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Apply = %v, want ErrCorrupt", err)
	}
	if got := listDir(t, target); len(got) != 0 {
		t.Errorf("target holds %q, want nothing", got)
	}
}

func TestPlan(t *testing.T) {
	n, target, other := node(t)
	write := func(name, version string) {
		if err := os.WriteFile(filepath.Join(other, name), program(name, version), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("prepare-node-join", "v1.2.0") // the master's: kept
	write("noded", "v1.1.0")             // older: replaced where it is
	write("node-join", "v1.3.0")         // newer: refused
	_, err := plan(t, n, source("v1.2.0"), target, false)
	if err == nil || err.Error() != "not installing: "+filepath.Join(other, "node-join")+" is version v1.3.0, newer than the master's v1.2.0" {
		t.Fatalf("plan: %v", err)
	}
	if h := problem.Hints(err); len(h) != 1 || !strings.Contains(h[0], "--allow-downgrade") {
		t.Errorf("hints %q, want --allow-downgrade", h)
	}
	p, err := plan(t, n, source("v1.2.0"), target, true)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range p.Install {
		got = append(got, a.Name+" "+a.From+">"+a.To+" "+a.Target)
	}
	want := []string{
		"node-daemon-setup >v1.2.0 " + filepath.Join(target, "node-daemon-setup"),
		"noded v1.1.0>v1.2.0 " + filepath.Join(other, "noded"),
		"node-join v1.3.0>v1.2.0 " + filepath.Join(other, "node-join"),
	}
	for _, name := range Programs[4:] { // callback-setup and after: missing
		want = append(want, name+" >v1.2.0 "+filepath.Join(target, name))
	}
	if !slices.Equal(got, want) {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if p.Paths["prepare-node-join"] != filepath.Join(other, "prepare-node-join") {
		t.Errorf("prepare-node-join runs from %q, want the node's own", p.Paths["prepare-node-join"])
	}
}

func TestPlanRefusals(t *testing.T) {
	src := source("v1.2.0")
	base := func() *Node {
		n := &Node{Arch: runtime.GOARCH, Machine: "m", Programs: map[string]Found{}, TargetDir: true}
		for _, p := range Programs {
			n.Programs[p] = Found{Name: p, Path: "/usr/bin/" + p, Version: "v1.2.0", Package: "nodejoin-node"}
		}
		return n
	}
	n := base()
	if p, err := MakePlan(src, n, "/usr/local/sbin", false); err != nil || len(p.Install) != 0 || p.Paths["noded"] != "/usr/bin/noded" {
		t.Errorf("the package at the master's version: %v, %v; want nothing to do and the package's programs", p, err)
	}
	n.Programs["noded"] = Found{Name: "noded", Path: "/usr/bin/noded", Version: "v1.1.0", Package: "nodejoin-node"}
	_, err := MakePlan(src, n, "/usr/local/sbin", true)
	if err == nil || err.Error() != "not installing: /usr/bin/noded is nodejoin-node's (version v1.1.0), not the master's v1.2.0" {
		t.Errorf("a package's older program: %v", err)
	}
	n = base()
	n.Programs["noded"] = Found{Name: "noded", Path: "/usr/local/bin/noded", Said: "-"}
	if _, err := MakePlan(src, n, "/usr/local/sbin", true); err == nil || err.Error() != "not installing: /usr/local/bin/noded does not say it is nodejoin's noded (its --version printed nothing)" {
		t.Errorf("another program named noded: %v", err)
	}
	n = base()
	n.Arch, n.Machine = "riscv64", "riscv64"
	if runtime.GOARCH == "riscv64" {
		n.Arch = "amd64"
	}
	if _, err := MakePlan(src, n, "/usr/local/sbin", true); err == nil || !strings.Contains(err.Error(), "the master's programs in /master/programs are for "+runtime.GOARCH) {
		t.Errorf("another architecture: %v", err)
	}
	n = base()
	for _, p := range Programs {
		n.Programs[p] = Found{Name: p}
	}
	n.TargetDir = false
	if _, err := MakePlan(src, n, "/opt/none", false); err == nil || err.Error() != "/opt/none: no such directory on the node" {
		t.Errorf("a missing target directory: %v", err)
	}
}

func TestElfArch(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := elfArch(exe); err != nil || got != runtime.GOARCH {
		t.Errorf("elfArch(test binary) = %q, %v; want %s", got, err, runtime.GOARCH)
	}
	if got := unameArch("x86_64"); got != "amd64" {
		t.Errorf("unameArch(x86_64) = %q", got)
	}
	if _, err := elfArch("/etc/hostname"); err == nil {
		t.Errorf("elfArch of a text file: no error")
	}
}

// A program of the same name that is not ours is left alone, through the
// real handshake.
func TestForeignProgramLeftAlone(t *testing.T) {
	n, target, other := node(t)
	foreign := []byte("#!/bin/sh\necho 'noded from elsewhere, 2.1'\n")
	if err := os.WriteFile(filepath.Join(other, "noded"), foreign, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := plan(t, n, source("v1.2.0"), target, true)
	want := "not installing: " + filepath.Join(other, "noded") + ` does not say it is nodejoin's noded (its --version printed "noded from elsewhere, 2.1")`
	if err == nil || err.Error() != want {
		t.Errorf("plan: %v\nwant: %s", err, want)
	}
}
