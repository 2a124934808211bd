package join

import (
	"context"
	"errors"
	"time"

	"github.com/nodejoin/nodejoin/internal/master/install"
	"github.com/nodejoin/nodejoin/internal/master/sshrun"
	"github.com/nodejoin/nodejoin/internal/problem"
)

// StepInstall is node-add --install's: the node-side programs put on the
// node over its connection, before prepare-node-join runs.
const StepInstall = "install"

// Install is what --install needs: the master's programs, where a node's
// missing ones go, and whether a newer or unordered one may be replaced.
type Install struct {
	Source         *install.Source
	TargetDir      string
	AllowDowngrade bool
}

// installPrograms runs the handshake and the transfer over conn, and
// points o at the programs the node now has (unless the operator named
// them with --prepare-program or --setup-program).
func installPrograms(ctx context.Context, o *Options, conn *sshrun.Conn, res *Result) error {
	t := time.Now()
	defer func() { res.StepSeconds[StepInstall] = time.Since(t).Seconds() }()
	st, err := install.Handshake(ctx, conn, o.Install.TargetDir)
	if err != nil {
		return fail(StepInstall, "%v", err)
	}
	p, err := install.MakePlan(o.Install.Source, st, o.Install.TargetDir, o.Install.AllowDowngrade)
	if err != nil {
		return &failure{step: StepInstall, msg: err.Error() + "; nothing was installed", hints: problem.Hints(err)}
	}
	if err := install.Apply(ctx, conn, p); err != nil {
		f := fail(StepInstall, "%v", err)
		if errors.Is(err, install.ErrCorrupt) {
			f.hints = []string{"the transfer was corrupted on its way; check the link to the node, then run node-add again"}
		}
		return f
	}
	res.Installed = p.Install
	if o.PrepareProgram == StepPrepare {
		o.PrepareProgram = p.Paths[StepPrepare]
	}
	if o.SetupProgram == StepSetup {
		o.SetupProgram = p.Paths[StepSetup]
	}
	return nil
}
