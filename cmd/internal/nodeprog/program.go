package nodeprog

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/apply"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
	"github.com/nodejoin/nodejoin/internal/txn"
)

// Program is a node-side program: it reads one document of type D on
// standard input and plans the node from it. Both node-side programs share
// this frame, so they keep the same flags, order of checks and output.
type Program[D any] struct {
	Name, Usage string
	Decode      func(io.Reader) (*D, error)
	// Planner returns the run's planner for doc, which checks doc against
	// the node and plans it each time Run calls it (see Run). It may keep
	// what its first call generated, such as a key, for the second.
	Planner func(cfg *nodeconf.Config, doc *D) apply.Planner
}

// Run is the program's cli run function: flags, node configuration, the
// document, recovery of an interrupted run, then Run with the plan; the result
// goes to standard output as one JSON object.
func (p Program[D]) Run(env *cli.Env, args []string) error {
	var f cli.Flags
	fs := cli.NewFlagSet(p.Name, p.Usage, &f)
	root := fs.String("root", "/", "apply changes under `DIR` (tests and recovery)")
	status := fs.Bool("status", false, "print what an unfinished earlier run left to put back (JSON); read no document, change nothing")
	if err := cli.Parse(env, fs, &f, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return problem.Usagef("no arguments are expected; the document is read on standard input")
	}
	ctx := context.Background()
	cfg, err := nodeconf.Load(*root)
	if err != nil {
		return err
	}
	if *status {
		return printStatus(env, p.Name, cfg)
	}
	doc, err := p.Decode(env.Stdin)
	if err != nil {
		return err
	}
	if err := apply.Recover(ctx, cfg, env.Log, f.DryRun); err != nil {
		return err
	}
	res, err := apply.Run(ctx, cfg, env.Log, p.Planner(cfg, doc), f.DryRun)
	if err != nil {
		return err
	}
	res.Program = p.Name
	for _, w := range res.Warnings {
		cli.PrintWarning(env.Stderr, p.Name, w)
	}
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// printStatus prints the pending journal: paths and actions, no content.
func printStatus(env *cli.Env, prog string, cfg *nodeconf.Config) error {
	st, err := txn.Pending(apply.Options(cfg, env.Log))
	if err != nil {
		return err
	}
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Program string      `json:"program"`
		Journal string      `json:"journal"`
		Pending *txn.Status `json:"pending"`
	}{prog, filepath.Join(cfg.StateDir, txn.JournalName), st})
}
