package apply

import (
	"context"
	"encoding/json"
	"io"

	"github.com/nodejoin/nodejoin/lib/cli"
	"github.com/nodejoin/nodejoin/lib/nodeconf"
)

// Program is a node-side program: it reads one document of type D on
// standard input and plans the node from it. Both node-side programs share
// this frame, so they keep the same flags, order of checks and output.
type Program[D any] struct {
	Name, Usage string
	Decode      func(io.Reader) (*D, error)
	// Plan checks doc against the node and plans it. It is called again
	// under the lock when the first plan changes anything (see Run).
	Plan func(cfg *nodeconf.Config, doc *D) (*Plan, error)
}

// Run is the program's cli run function: flags, node configuration, the
// document, recovery of an interrupted run, then Run with the plan; the result
// goes to standard output as one JSON object.
func (p Program[D]) Run(env *cli.Env, args []string) error {
	var f cli.Flags
	fs := cli.NewFlagSet(p.Name, p.Usage, &f)
	root := fs.String("root", "/", "apply changes under `DIR` (tests and recovery)")
	if err := cli.Parse(env, fs, &f, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("no arguments are expected; the document is read on standard input")
	}
	ctx := context.Background()
	cfg, err := nodeconf.Load(*root)
	if err != nil {
		return err
	}
	doc, err := p.Decode(env.Stdin)
	if err != nil {
		return err
	}
	if err := Recover(ctx, cfg, env.Log, f.DryRun); err != nil {
		return err
	}
	res, err := Run(ctx, cfg, env.Log, func() (*Plan, error) { return p.Plan(cfg, doc) }, f.DryRun)
	if err != nil {
		return err
	}
	res.Program = p.Name
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}
