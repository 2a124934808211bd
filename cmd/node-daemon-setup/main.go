// Node-daemon-setup writes a node's ssconf files, HMAC key and node daemon
// certificates from the JSON document on standard input, as Ganeti's tool
// of the same name does, and (re)starts the node daemon. See
// doc/node-daemon-setup.8.md.
package main

import (
	"context"
	"encoding/json"
	"os"

	"github.com/nodejoin/nodejoin/lib/apply"
	"github.com/nodejoin/nodejoin/lib/cli"
	"github.com/nodejoin/nodejoin/lib/joindoc"
	"github.com/nodejoin/nodejoin/lib/nodeconf"
)

const prog = "node-daemon-setup"

const usage = `Usage: node-daemon-setup [flags] < document.json

Writes the ssconf files, hmac.key, server.pem and a client certificate
(client.pem) from the JSON document on standard input, and (re)starts the
node daemon when the document asks for it. Prints a JSON result on standard
output. Exit status: 0 done, 1 failed and rolled back, 2 usage, 3 input
rejected.`

func main() { os.Exit(cli.Main(prog, os.Args[1:], run)) }

func run(env *cli.Env, args []string) error {
	var f cli.Flags
	fs := cli.NewFlagSet(prog, usage, &f)
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
	doc, err := joindoc.DecodeDaemonSetup(env.Stdin)
	if err != nil {
		return err
	}
	if err := apply.Recover(ctx, cfg, env.Log, f.DryRun); err != nil {
		return err
	}
	p, err := newPlan(cfg, doc)
	if err != nil {
		return err
	}
	res := &joindoc.Result{Program: prog, ClientCertificateFingerprint: p.clientFingerprint}
	if err := apply.Run(ctx, cfg, env.Log, p.Plan, f.DryRun, res); err != nil {
		return err
	}
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}
