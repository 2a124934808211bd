package install

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nodejoin/nodejoin/internal/problem"
)

// stageScript receives one program on standard input into a temporary
// file beside its target ($1), created private (umask 077), and keeps it
// only if its sha256 is $2: then root's, mode 0755, fsynced (coreutils'
// sync FILE), and its name printed for the commit. On any failure it
// removes the temporary file; the target is never touched.
const stageScript = `set -eu
target=$1 want=$2
dir=$(dirname -- "$target") name=$(basename -- "$target")
umask 077
tmp=$(mktemp -- "$dir/.$name.nodejoin-XXXXXX")
trap 'rm -f -- "$tmp"' EXIT HUP INT TERM
cat > "$tmp"
got=$(sha256sum < "$tmp")
got=${got%% *}
if [ "$got" != "$want" ]; then
	echo "nodejoin-install: error: $target: received $(wc -c < "$tmp") bytes with sha256 $got, not the master's $want; nothing was installed" >&2
	exit 3
fi
chown 0:0 -- "$tmp"
chmod 0755 -- "$tmp"
sync -- "$tmp"
trap - EXIT HUP INT TERM
printf '%s\n' "$tmp"
`

// commitScript renames each staged file ($1 $2: temp target, ...) over
// its target and fsyncs the targets' directories.
const commitScript = `set -eu
dirs=
while [ $# -ge 2 ]; do
	mv -fT -- "$1" "$2"
	dirs="$dirs $(dirname -- "$2")"
	shift 2
done
for d in $dirs; do sync -- "$d"; done
`

// cleanupScript removes staged files after a failure.
const cleanupScript = `rm -f -- "$@"`

// ErrCorrupt is a program that did not arrive whole on the node.
var ErrCorrupt = errors.New("the program did not arrive whole")

// Apply puts the plan's programs on the node: each staged and checked,
// then all renamed into place, so that a failure before the renames
// leaves every program as it was and no temporary file behind.
func Apply(ctx context.Context, r Runner, p *Plan) error {
	if len(p.Install) == 0 {
		return nil
	}
	var staged []string
	cleanup := func() {
		if len(staged) > 0 {
			// Best effort: the connection may be what failed.
			_, _ = r.Run(context.WithoutCancel(ctx), append([]string{"sh", "-c", cleanupScript, "nodejoin-install"}, staged...), nil)
		}
	}
	for _, a := range p.Install {
		res, err := r.Run(ctx, []string{"sh", "-c", stageScript, "nodejoin-install", a.Target, a.binary.Sum}, a.binary.Data)
		if err != nil {
			cleanup()
			return fmt.Errorf("sending %s: %w", a.Name, err)
		}
		if res.Status != 0 {
			cleanup()
			msg := remoteError(res.Stderr)
			if res.Status == problem.ExitRejected {
				return fmt.Errorf("%w: %s", ErrCorrupt, msg)
			}
			return fmt.Errorf("sending %s to %s: exit %d: %s", a.Name, a.Target, res.Status, msg)
		}
		tmp := strings.TrimSpace(string(res.Stdout))
		if !strings.HasPrefix(tmp, "/") || strings.Contains(tmp, "\n") {
			cleanup()
			return fmt.Errorf("sending %s: the node named no staged file", a.Name)
		}
		staged = append(staged, tmp)
	}
	argv := []string{"sh", "-c", commitScript, "nodejoin-install"}
	for i, a := range p.Install {
		argv = append(argv, staged[i], a.Target)
	}
	res, err := r.Run(ctx, argv, nil)
	if err == nil && res.Status != 0 {
		err = fmt.Errorf("exit %d: %s", res.Status, remoteError(res.Stderr))
	}
	if err != nil {
		cleanup() // the files not yet renamed
		return fmt.Errorf("moving the programs into place: %w", err)
	}
	return nil
}

// remoteError is the stage script's error line, else the last line.
func remoteError(stderr []byte) string {
	for _, l := range strings.Split(string(stderr), "\n") {
		if _, text, ok := problem.CutLine(l, problem.LineError); ok {
			return text
		}
	}
	return lastLine(stderr)
}
