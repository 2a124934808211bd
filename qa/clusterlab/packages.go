package clusterlab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/nodejoin/nodejoin/qa/harness"
)

var (
	debOnce sync.Once
	debDir  string
	debErr  error
)

// BuildPackages runs ./build.sh --deb once per process into dir (a test's
// temporary directory, which it removes) and returns the .deb files by
// package name: the packages an operator installs.
func BuildPackages(dir string) (map[string]string, error) {
	debOnce.Do(func() {
		root, err := ModuleRoot()
		if err != nil {
			debErr = err
			return
		}
		cmd := exec.Command("./build.sh", "--deb")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "BIN="+filepath.Join(dir, "bin"), "OUT="+filepath.Join(dir, "out"))
		if out, err := cmd.CombinedOutput(); err != nil {
			debErr = fmt.Errorf("./build.sh --deb: %w\n%s", err, out)
			return
		}
		debDir = filepath.Join(dir, "out")
	})
	if debErr != nil {
		return nil, debErr
	}
	files, err := filepath.Glob(filepath.Join(debDir, "*.deb"))
	if err != nil {
		return nil, err
	}
	debs := map[string]string{}
	for _, f := range files {
		debs[strings.SplitN(filepath.Base(f), "_", 2)[0]] = f
	}
	return debs, nil
}

// pkgRun is where a host keeps its package root: in its own /run (a tmpfs
// that dies with it).
const pkgRun = "/run/nj-pkg"

// packageRoot gives the host a private /usr, /etc, /var/lib and /var/cache
// for dpkg: an overlay over each, its upper layer in the host's /run, with
// the host's own mounts below each (its /etc/ssh, /var/lib/ganeti, bin dir,
// ...) mounted again on top. In a lab host the machine's directories are
// read-only, and /var/lib may be an empty tmpfs: dpkg then gets a copy of
// the machine's database, so that the packages' dependencies (openssh-server)
// are found installed. Nothing reaches the machine.
const packageRoot = `set -eu
for d in /usr /etc /var/lib /var/cache; do
	n=` + pkgRun + `/$(echo "${d#/}" | tr / _)
	mkdir -p "$n/upper" "$n/work" "$n/below"
	# The host's mounts under $d, parents first, before the overlay hides them.
	subs=$(awk -v d="$d/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo)
	mount --rbind "$d" "$n/below"
	mount -t overlay overlay -o "lowerdir=$d,upperdir=$n/upper,workdir=$n/work" "$d"
	for s in $subs; do
		mount --bind "$n/below${s#"$d"}" "$s"
	done
done
`

// PrivateRoot gives host h a private, writable /usr, /etc, /var/lib and
// /var/cache (packageRoot), for programs that write there (dpkg,
// cloud-init); everything they write dies with the host.
func PrivateRoot(ctx context.Context, h *harness.Host) error {
	if r := Run(ctx, h, nil, "sh", "-c", packageRoot); !r.OK() {
		return fmt.Errorf("%s: making a private root: %s", h.Name, r)
	}
	return nil
}

// InstallPackages installs the .deb files in host h with dpkg -i, into a
// private package root (packageRoot): the machine itself is not changed.
func InstallPackages(ctx context.Context, h *harness.Host, debs ...string) error {
	if _, err := os.Stat(h.Path(pkgRun)); os.IsNotExist(err) {
		if err := PrivateRoot(ctx, h); err != nil {
			return err
		}
		if _, err := os.Stat(h.Path("/var/lib/dpkg/status")); os.IsNotExist(err) {
			// cp runs here, in the test's namespaces: it reads the machine's
			// database and writes into the host's overlay.
			if out, err := exec.CommandContext(ctx, "cp", "-a", "/var/lib/dpkg", h.Path("/var/lib/")).CombinedOutput(); err != nil {
				return fmt.Errorf("%s: copying the dpkg database: %w: %s", h.Name, err, out)
			}
		}
	}
	args := []string{"dpkg", "--install"}
	for _, deb := range debs {
		in := pkgRun + "/" + filepath.Base(deb)
		if out, err := exec.CommandContext(ctx, "cp", deb, h.Path(in)).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: copying %s: %w: %s", h.Name, deb, err, out)
		}
		args = append(args, in)
	}
	if r := Run(ctx, h, nil, args...); !r.OK() {
		return fmt.Errorf("%s: %s: %s", h.Name, strings.Join(args, " "), r)
	}
	return nil
}
