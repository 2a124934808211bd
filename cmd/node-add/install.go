package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/master/install"
	"github.com/nodejoin/nodejoin/internal/master/join"
	"github.com/nodejoin/nodejoin/internal/problem"
)

// installFlags are --install's.
type installFlags struct {
	on             bool
	from           string
	dir            string
	allowDowngrade bool
}

func (f *installFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.on, "install", false, "put the node-side programs on each node that lacks them or has another version, over the same connection, before the join (default from node.json's node_add_install)")
	fs.StringVar(&f.from, "install-from", "", "the master's node-side programs for --install are in `DIR` (default "+install.DefaultDir+", else the directory of node-add itself)")
	fs.StringVar(&f.dir, "install-dir", install.DefaultTarget, "--install puts a program the node lacks into `DIR` on the node (one on the login user's PATH)")
	fs.BoolVar(&f.allowDowngrade, "allow-downgrade", false, "let --install replace a node's program that is newer than the master's, or whose version cannot be ordered with it")
	// Shell completion (cli.Args, cli.Values): NODE is a host name.
	cli.Args(fs, cli.ArgsHostnames)
	cli.Values(fs, "output", "text", "json")
	cli.Values(fs, "print-payload", join.StepPrepare, join.StepSetup)
}

// options checks the flags and reads the master's programs once for
// every node; nil when --install is not given.
func (f *installFlags) options(ctx context.Context) (*join.Install, error) {
	if !f.on {
		if f.from != "" || f.dir != install.DefaultTarget || f.allowDowngrade {
			return nil, problem.Usagef("--install-from, --install-dir and --allow-downgrade need --install")
		}
		return nil, nil
	}
	if !filepath.IsAbs(f.dir) || strings.ContainsAny(f.dir, "\n\t") {
		return nil, problem.Usagef("--install-dir must be an absolute path, not %q", f.dir)
	}
	from := f.from
	if from == "" {
		from = defaultInstallFrom()
	}
	src, err := install.Load(ctx, from)
	if err != nil {
		return nil, problem.Hint(problem.Reject("--install-from", "%v", err),
			"the nodejoin-master package ships the node-side programs in "+install.DefaultDir+"; from a build tree, name its bin/ with --install-from")
	}
	return &join.Install{Source: src, TargetDir: filepath.Clean(f.dir), AllowDowngrade: f.allowDowngrade}, nil
}

// defaultInstallFrom is the package's directory where it exists, else the
// directory node-add runs from (a build tree's bin/ holds every program).
func defaultInstallFrom() string {
	if fi, err := os.Stat(install.DefaultDir); err == nil && fi.IsDir() {
		return install.DefaultDir
	}
	if exe, err := os.Executable(); err == nil {
		return filepath.Dir(exe)
	}
	return install.DefaultDir
}

// installedText is the report's note of what --install put on a node.
func installedText(r *join.Result) string {
	if len(r.Installed) == 0 {
		return ""
	}
	var names []string
	for _, a := range r.Installed {
		names = append(names, a.Name)
	}
	return fmt.Sprintf("; installed %s %s", strings.Join(names, ", "), r.Installed[0].To)
}

// installPlan is --dry-run's account of --install.
type installPlan struct {
	From     string   `json:"from"`
	Dir      string   `json:"dir"`
	Versions []string `json:"versions"`
	Programs []string `json:"programs"`
}

func dryRunInstall(inst *join.Install) *installPlan {
	if inst == nil {
		return nil
	}
	p := &installPlan{From: inst.Source.Dir, Dir: inst.TargetDir}
	for _, b := range inst.Source.Binaries {
		p.Programs = append(p.Programs, b.Name)
		if len(p.Versions) == 0 || p.Versions[len(p.Versions)-1] != b.Version {
			p.Versions = append(p.Versions, b.Version)
		}
	}
	return p
}
