package dist_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// complete sources a completion file in bash and completes the words
// (the last one is the word under the cursor), as bash does on TAB.
func complete(t *testing.T, file string, words ...string) []string {
	t.Helper()
	script := `set -u
source "$1"; shift
spec=$(complete -p "$1") || exit 1
fn=${spec#*-F }; fn=${fn%% *}
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
COMPREPLY=()
"$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"`
	out, err := exec.Command("bash", append([]string{"-c", script, "bash", file}, words...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("completing %q with %s: %v\n%s", words, file, err, out)
	}
	return strings.Fields(string(out))
}

// TestCompletionShipped: each package ships a bash completion for each of
// its programs, and it completes the program's own last flag from a
// prefix, and offers nothing that is not one of its flags.
func TestCompletionShipped(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("dist: needs bash(1)")
	}
	dir := built(t)
	root := t.TempDir()
	for _, deb := range debs(t, dir) {
		if out, err := exec.Command("dpkg-deb", "--extract", deb, root).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb --extract %s: %v\n%s", deb, err, out)
		}
	}
	for _, p := range readPrograms(t) {
		file := filepath.Join(root, "usr", "share", "bash-completion", "completions", p.name)
		if fi, err := os.Stat(file); err != nil || fi.Mode() != 0o644 {
			t.Errorf("%s: no completion file of mode 0644 (%v)", p.pkg, err)
			continue
		}
		flags := helpFlags(t, filepath.Join(dir, "bin", p.name))
		last := flags[len(flags)-1] // the program's own: the common flags come first
		prefix := last[:min(len(last), 5)]
		got := complete(t, file, p.name, prefix)
		if !slices.Contains(got, last) {
			t.Errorf("%s: completing %q gives %q, want %s among them", p.name, prefix, got, last)
		}
		for _, g := range got {
			if !slices.Contains(flags, g) || !strings.HasPrefix(g, prefix) {
				t.Errorf("%s: completing %q offers %q, which is not one of its flags with that prefix", p.name, prefix, g)
			}
		}
	}
	// A subcommand's own flags and words (join-service's).
	file := filepath.Join(root, "usr", "share", "bash-completion", "completions", "join-service")
	for _, tc := range []struct{ words, want []string }{
		{[]string{"join-service", "slot", "remove-stale", "--old"}, []string{"--older-than"}},
		{[]string{"join-service", "serve", "--etcd-c"}, []string{"--etcd-ca", "--etcd-cert"}},
		{[]string{"join-service", "requests", "t"}, []string{"token"}},
		{[]string{"join-service", "i"}, []string{"install-window"}},
	} {
		if got := complete(t, file, tc.words...); !slices.Equal(got, tc.want) {
			t.Errorf("completing %q gives %q, want %q", tc.words, got, tc.want)
		}
	}
}
