package dist_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// repo is the source tree's top, from this package's directory.
const repo = ".."

// program is one line of tools/programs.
type program struct{ name, pkg string }

func readPrograms(t *testing.T) []program {
	t.Helper()
	f, err := os.Open(filepath.Join(repo, "tools", "programs"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ps []program
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			t.Fatalf("tools/programs:%d: want \"program package\", got %q", n, line)
		}
		ps = append(ps, program{fields[0], fields[1]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ps
}

// TestProgramsTable: every program under cmd/ is packaged, and every
// packaged program has its man page and its package its control fields.
func TestProgramsTable(t *testing.T) {
	ps := readPrograms(t)
	dirs, err := os.ReadDir(filepath.Join(repo, "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, p := range ps {
		listed[p.name] = true
		for _, f := range []string{"cmd/" + p.name, "doc/" + p.name + ".8.md", "dist/debian/" + p.pkg + "/control"} {
			if _, err := os.Stat(filepath.Join(repo, f)); err != nil {
				t.Errorf("tools/programs lists %s (%s): %v", p.name, p.pkg, err)
			}
		}
	}
	for _, d := range dirs {
		// A program is a folder with a main.go; cmd/internal holds what
		// the programs share.
		if _, err := os.Stat(filepath.Join(repo, "cmd", d.Name(), "main.go")); err != nil {
			continue
		}
		if d.IsDir() && !listed[d.Name()] {
			t.Errorf("cmd/%s is in no package: add a line to tools/programs", d.Name())
		}
	}
}

// build is one ./build.sh --deb into a temporary directory, shared by the
// tests of this package.
var build struct {
	once     sync.Once
	dir, err string
}

// built returns the directory holding bin/ and out/ (man/ and the .deb
// files) of one build.sh --deb, or skips where dpkg-deb is missing.
func built(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dist: needs dpkg-deb(1) (Debian's dpkg) to build the packages")
	}
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "nodejoin-dist-")
		if err != nil {
			build.err = err.Error()
			return
		}
		build.dir = dir
		cmd := exec.Command("./build.sh", "--deb")
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "BIN="+filepath.Join(dir, "bin"), "OUT="+filepath.Join(dir, "out"))
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Sprintf("build.sh --deb: %v\n%s", err, out)
		}
	})
	if build.err != "" {
		t.Fatal(build.err)
	}
	return build.dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

func debs(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "out", "*.deb"))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, f := range files {
		m[strings.SplitN(filepath.Base(f), "_", 2)[0]] = f
	}
	return m
}

// flagLine is an option line of a pflag --help: "  -d, --debug  ..." or
// "      --root DIR  ...".
var flagLine = regexp.MustCompile(`^\s+(?:-([a-zA-Z0-9]), )?--([a-z0-9][a-z0-9-]*)`)

// helpFlags runs prog --help and returns its flags as they are written
// (--root, -d).
func helpFlags(t *testing.T, prog string) []string {
	t.Helper()
	out, err := exec.Command(prog, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --help: %v\n%s", prog, err, out)
	}
	var flags []string
	for line := range strings.Lines(string(out)) {
		m := flagLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if m[1] != "" {
			flags = append(flags, "-"+m[1])
		}
		flags = append(flags, "--"+m[2])
	}
	if len(flags) == 0 {
		t.Fatalf("%s --help lists no flags:\n%s", prog, out)
	}
	return flags
}

// TestManPagesListEveryFlag: each program's man page names every flag its
// --help lists, so that the page a package installs documents the program.
func TestManPagesListEveryFlag(t *testing.T) {
	dir := built(t)
	for _, p := range readPrograms(t) {
		t.Run(p.name, func(t *testing.T) {
			page, err := os.ReadFile(filepath.Join(repo, "doc", p.name+".8.md"))
			if err != nil {
				t.Fatal(err)
			}
			var missing []string
			for _, f := range helpFlags(t, filepath.Join(dir, "bin", p.name)) {
				// A flag is named when no letter, digit or dash continues it
				// (--root, not --root-dir).
				re := regexp.MustCompile(`(^|[^a-zA-Z0-9-])` + regexp.QuoteMeta(f) + `($|[^a-zA-Z0-9-])`)
				if !re.Match(page) {
					missing = append(missing, f)
				}
			}
			if len(missing) > 0 {
				t.Errorf("doc/%s.8.md does not mention these flags of %s --help: %s", p.name, p.name, strings.Join(missing, " "))
			}
		})
	}
}

// TestManPagesRender: the roff pages the packages install are readable
// with man -l, without a warning from groff, under their NAME.
func TestManPagesRender(t *testing.T) {
	dir := built(t)
	if _, err := exec.LookPath("man"); err != nil {
		t.Skip("dist: needs man(1) (man-db) to render the man pages")
	}
	for _, p := range readPrograms(t) {
		cmd := exec.Command("man", "--warnings", "-E", "UTF-8", "-l", filepath.Join(dir, "out", "man", p.name+".8"))
		cmd.Env = append(os.Environ(), "MANWIDTH=80", "LC_ALL=C.UTF-8", "MANPAGER=cat", "PAGER=cat")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || stderr.Len() > 0 {
			t.Errorf("man -l %s.8: %v\n%s", p.name, err, stderr.String())
			continue
		}
		text := string(out)
		for _, want := range []string{`^` + strings.ToUpper(p.name) + `\(8\)`, `\nNAME\n\s+` + p.name + `\s+-\s`, `\nSYNOPSIS\n`, `\nEXIT STATUS\n`} {
			if !regexp.MustCompile(want).MatchString(text) {
				t.Errorf("man -l %s.8: no %s in\n%s", p.name, want, text)
			}
		}
	}
}

// TestPackageContents: each package holds its programs, their man pages
// and units, its copyright and changelog, at the version build.sh gave.
func TestPackageContents(t *testing.T) {
	dir := built(t)
	pkgs := debs(t, dir)
	want := map[string][]string{}
	for _, p := range readPrograms(t) {
		want[p.pkg] = append(want[p.pkg], "./usr/bin/"+p.name, "./usr/share/man/man8/"+p.name+".8.gz")
		if _, err := os.Stat(filepath.Join(repo, "dist", "systemd", p.name+".service")); err == nil {
			want[p.pkg] = append(want[p.pkg], "./usr/lib/systemd/system/"+p.name+".service")
		}
	}
	if len(pkgs) != len(want) {
		t.Fatalf("built %v, want one package for each of %v", pkgs, want)
	}
	version := regexp.MustCompile(`^([0-9][0-9.]*|[0-9][0-9.]*\+git[0-9]{8}\.[0-9a-f]{7})$`)
	for pkg, files := range want {
		deb := pkgs[pkg]
		if deb == "" {
			t.Errorf("no %s package built", pkg)
			continue
		}
		out, err := exec.Command("dpkg-deb", "--contents", deb).Output()
		if err != nil {
			t.Fatal(err)
		}
		var have []string
		for line := range strings.Lines(string(out)) {
			f := strings.Fields(line)
			if !strings.HasPrefix(f[0], "-") {
				continue
			}
			if f[1] != "root/root" {
				t.Errorf("%s: %s is owned by %s, want root/root", pkg, f[5], f[1])
			}
			have = append(have, f[5])
		}
		for _, f := range append(files, "./usr/share/doc/"+pkg+"/copyright", "./usr/share/doc/"+pkg+"/changelog.gz") {
			if !slices.Contains(have, f) {
				t.Errorf("%s: no %s in\n%s", pkg, f, out)
			}
		}
		v, err := exec.Command("dpkg-deb", "--field", deb, "Version").Output()
		if err != nil {
			t.Fatal(err)
		}
		if s := strings.TrimSpace(string(v)); !version.MatchString(s) {
			t.Errorf("%s: version %q is neither a tag's nor 0.0.0+gitYYYYMMDD.commit", pkg, s)
		}
	}
}

// TestLintian: lintian reports no error and no warning on either package
// (the overrides in dist/debian/<package>/lintian-overrides say why).
func TestLintian(t *testing.T) {
	dir := built(t)
	if _, err := exec.LookPath("lintian"); err != nil {
		t.Skip("dist: needs lintian(1) (tools/install-deps.sh installs it)")
	}
	var files []string
	for _, f := range debs(t, dir) {
		files = append(files, f)
	}
	slices.Sort(files)
	// --fail-on error,warning: exit 2 on either; the output lists them.
	cmd := exec.Command("lintian", append([]string{"--fail-on", "error,warning", "--no-tag-display-limit"}, files...)...)
	// lintian leaves its MLDBM scratch files (mldbm-elf-*) in TMPDIR.
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("lintian: %v\n%s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		if strings.HasPrefix(line, "E: ") || strings.HasPrefix(line, "W: ") {
			t.Errorf("lintian: %s", line)
		}
	}
}

// TestSystemdUnits: systemd-analyze verify accepts every unit as the
// package installs it, against the package's own programs, with no
// warning (a misspelt or misvalued setting is only a warning).
func TestSystemdUnits(t *testing.T) {
	dir := built(t)
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("dist: needs systemd-analyze(1) (Debian's systemd package)")
	}
	units, err := filepath.Glob(filepath.Join(repo, "dist", "systemd", "*.service"))
	if err != nil || len(units) == 0 {
		t.Fatalf("no units in dist/systemd: %v", err)
	}
	root := t.TempDir()
	for _, deb := range debs(t, dir) {
		if out, err := exec.Command("dpkg-deb", "--extract", deb, root).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb --extract %s: %v\n%s", deb, err, out)
		}
	}
	// The targets the units name (multi-user.target, network-online.target)
	// and the ones systemd always loads, from this machine's systemd.
	targets, err := filepath.Glob("/usr/lib/systemd/system/*.target")
	if err != nil || len(targets) == 0 {
		t.Skip("dist: no systemd targets in /usr/lib/systemd/system to verify against")
	}
	unitDir := filepath.Join(root, "usr", "lib", "systemd", "system")
	for _, tg := range targets {
		data, err := os.ReadFile(tg)
		if err != nil {
			continue // a dangling alias
		}
		if err := os.WriteFile(filepath.Join(unitDir, filepath.Base(tg)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range units {
		name := filepath.Base(u)
		cmd := exec.Command("systemd-analyze", "verify", "--man=no", "--root="+root, "/usr/lib/systemd/system/"+name)
		out, err := cmd.CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out)
		}
	}
}
