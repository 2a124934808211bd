package install

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/nodejoin/nodejoin/internal/master/sshrun"
	"github.com/nodejoin/nodejoin/internal/problem"
)

// Runner runs a program on the node: an *sshrun.Conn (one session over
// the node's one connection), or a local shell in tests.
type Runner interface {
	Run(ctx context.Context, argv []string, stdin []byte) (*sshrun.Result, error)
}

// DefaultTarget is the node's directory for programs it lacks: first on
// root's PATH as Debian's sshd sets it, and dpkg's packages own nothing
// there.
const DefaultTarget = "/usr/local/sbin"

// Found is one program as the node has it.
type Found struct {
	Name    string
	Path    string // "" when the node has none on the login user's PATH
	Version string // "" when it has none, or it did not say
	Package string // the dpkg package that owns Path, if any
	// Said is what its --version printed when that was not "NAME
	// VERSION": then it is not one of ours (or a broken copy).
	Said string
}

// Node is what the handshake learnt of the node.
type Node struct {
	Arch      string // GOARCH of uname -m; "" when unknown
	Machine   string // uname -m
	Programs  map[string]Found
	TargetDir bool // the target directory exists and is a directory
}

// handshakeScript prints the node's machine, each program's path,
// version and owning package, and whether the target directory is
// there. It changes nothing. $1 is the target directory, the rest the
// program names (checked by the caller: no shell meaning).
const handshakeScript = `set -u
dir=$1; shift
printf 'machine\t%s\n' "$(uname -m)"
for p; do
	path=$(command -v "$p" 2>/dev/null) || path=
	case $path in /*) ;; *) path= ;; esac
	v= owner=
	if [ -n "$path" ]; then
		v=$("$path" --version </dev/null 2>/dev/null | head -n 1) || v=
		if command -v dpkg-query >/dev/null 2>&1; then
			owner=$(dpkg-query -S "$path" 2>/dev/null | head -n 1) || owner=
			owner=${owner%%:*}
		fi
	fi
	printf 'program\t%s\t%s\t%s\t%s\n' "$p" "${path:--}" "${v:--}" "${owner:--}"
done
if [ -d "$dir" ]; then echo 'target	dir'; else echo 'target	missing'; fi
`

// Handshake asks the node, in one session, which programs it has.
func Handshake(ctx context.Context, r Runner, target string) (*Node, error) {
	argv := append([]string{"sh", "-c", handshakeScript, "nodejoin-install", target}, Programs...)
	res, err := r.Run(ctx, argv, nil)
	if err != nil {
		return nil, fmt.Errorf("asking the node for its programs: %w", err)
	}
	if res.Status != 0 {
		return nil, fmt.Errorf("asking the node for its programs: sh exited %d: %s", res.Status, lastLine(res.Stderr))
	}
	n := &Node{Programs: map[string]Found{}}
	for _, l := range strings.Split(string(res.Stdout), "\n") {
		f := strings.Split(l, "\t")
		switch {
		case len(f) == 2 && f[0] == "machine":
			n.Machine, n.Arch = f[1], unameArch(f[1])
		case len(f) == 5 && f[0] == "program":
			fd := Found{Name: f[1]}
			if f[2] != "-" {
				fd.Path = f[2]
				if v, ok := versionOf(f[3], f[1]); ok {
					fd.Version = v
				} else {
					fd.Said = f[3]
				}
				if f[4] != "-" {
					fd.Package = f[4]
				}
			}
			n.Programs[f[1]] = fd
		case len(f) == 2 && f[0] == "target":
			n.TargetDir = f[1] == "dir"
		}
	}
	for _, p := range Programs {
		if _, ok := n.Programs[p]; !ok {
			return nil, fmt.Errorf("asking the node for its programs: the answer names no %s", p)
		}
	}
	return n, nil
}

// Action is one program to put on the node.
type Action struct {
	Name   string `json:"program"`
	Target string `json:"path"`
	From   string `json:"from,omitempty"` // the node's version; "" when it had none
	To     string `json:"to"`
	binary *Binary
}

// Plan is what to install, and the path of each program once installed.
type Plan struct {
	Install []Action
	Paths   map[string]string
}

// MakePlan decides, for each program, to keep the node's or to install
// the master's: missing or older ones are installed (into target, or over
// the node's own copy where it has one outside any package); a newer or
// unordered version only with allowDowngrade; a program of a dpkg package
// is never overwritten (dpkg would not know). It changes nothing.
func MakePlan(src *Source, n *Node, target string, allowDowngrade bool) (*Plan, error) {
	if n.Arch != src.Arch {
		return nil, problem.Hint(fmt.Errorf("the node is %s (uname -m %q); the master's programs in %s are for %s", orUnknown(n.Arch), n.Machine, src.Dir, src.Arch),
			"install nodejoin built for the node's architecture there first (the nodejoin-node package), or give node-add --install-from a directory of programs built for it")
	}
	p := &Plan{Paths: map[string]string{}}
	var refused []string
	var hints []string
	for i := range src.Binaries {
		b := &src.Binaries[i]
		have := n.Programs[b.Name]
		order := Compare(have.Version, b.Version)
		if have.Path == "" {
			order = Older
		}
		if order == Same {
			p.Paths[b.Name] = have.Path
			continue
		}
		if have.Said != "" {
			said := "nothing"
			if have.Said != "-" {
				said = fmt.Sprintf("%q", have.Said)
			}
			refused = append(refused, fmt.Sprintf("%s does not say it is nodejoin's %s (its --version printed %s)", have.Path, b.Name, said))
			hints = appendOnce(hints, "node-add replaces only programs that say which nodejoin version they are: remove or rename the node's own, then run node-add --install again")
			continue
		}
		if have.Package != "" {
			refused = append(refused, fmt.Sprintf("%s is %s's (version %s), not the master's %s", have.Path, have.Package, orUnknown(have.Version), b.Version))
			hints = appendOnce(hints, fmt.Sprintf("node-add does not overwrite what dpkg installed: install the same %s package on the node as on the master (dpkg -i %s_*.deb), or remove it there", have.Package, have.Package))
			continue
		}
		if (order == Newer || order == Unordered) && !allowDowngrade {
			why := "newer than"
			if order == Unordered {
				why = "not comparable with"
			}
			refused = append(refused, fmt.Sprintf("%s is version %s, %s the master's %s", have.Path, have.Version, why, b.Version))
			hints = appendOnce(hints, "pass --allow-downgrade to replace the node's programs with the master's all the same")
			continue
		}
		dst := path.Join(target, b.Name)
		if have.Path != "" {
			dst = have.Path // update it where it is, so that PATH finds the new one
		} else if !n.TargetDir {
			return nil, problem.Hint(fmt.Errorf("%s: no such directory on the node", target),
				"name a directory on the login user's PATH with --install-dir")
		}
		p.Install = append(p.Install, Action{Name: b.Name, Target: dst, From: have.Version, To: b.Version, binary: b})
		p.Paths[b.Name] = dst
	}
	if len(refused) > 0 {
		return nil, problem.Hint(fmt.Errorf("not installing: %s", strings.Join(refused, "; ")), hints...)
	}
	return p, nil
}

func appendOnce(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func lastLine(b []byte) string {
	l := strings.Split(strings.TrimSpace(string(b)), "\n")
	return l[len(l)-1]
}
