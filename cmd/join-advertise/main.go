// Join-advertise publishes this machine's auto-registration advert (DNS-SD
// type _nodejoin._tcp) as an avahi static service file, or removes it.
// Avahi does the probing, the conflicts and the goodbyes. See
// doc/join-advertise.8.md.
package main

import (
	"context"
	"encoding/json"
	"os"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/advert"
	"github.com/nodejoin/nodejoin/internal/apply"
	"github.com/nodejoin/nodejoin/internal/jsondoc"
	"github.com/nodejoin/nodejoin/internal/node/nodeadvert"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
	"github.com/nodejoin/nodejoin/schemas"
)

const prog = "join-advertise"

const usage = `Usage: join-advertise [flags] < advert.json
       join-advertise --print [flags] < advert.json
       join-advertise --remove [flags]

Publishes this machine's advert for auto-registration: an avahi static
service file, ` + advert.ServiceFile + `, of type ` + advert.ServiceType + `
whose TXT record says the machine's role, cluster, name, parent, host key
fingerprint, the cluster certificate's pin (masters) and its state (ready or
registered). --print writes the file to standard output instead (image
builders); --remove withdraws the advert.
Exit status: 0 done, 1 failed and rolled back, 2 usage, 3 input rejected.`

func main() { os.Exit(cli.Main(prog, os.Args[1:], run)) }

// document is join-advertise's input: the advert and its port.
type document struct {
	advert.Advert
	Port int `json:"port"`
}

func run(env *cli.Env, args []string) error {
	var f cli.Flags
	fs := cli.NewFlagSet(prog, usage, &f)
	root := fs.String("root", "/", "take every path under `DIR` (tests, image builders)")
	printOnly := fs.Bool("print", false, "print the service file on standard output; write nothing")
	remove := fs.Bool("remove", false, "remove the advert (read no document)")
	if err := cli.Parse(env, fs, &f, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return problem.Usagef("no arguments are expected; the document is read on standard input")
	}
	if *remove && *printOnly {
		return problem.Usagef("--remove and --print exclude each other")
	}
	cfg, err := nodeconf.Load(*root)
	if err != nil {
		return err
	}
	var a *advert.Advert
	port := 0
	if !*remove {
		doc, err := decode(env, cfg)
		if err != nil {
			return err
		}
		if *printOnly {
			_, err := env.Stdout.Write(advert.ServiceXML(doc.Advert, doc.Port))
			return err
		}
		a, port = &doc.Advert, doc.Port
	}
	ctx := context.Background()
	if err := apply.Recover(ctx, cfg, env.Log, f.DryRun); err != nil {
		return err
	}
	if !f.DryRun {
		if err := nodeadvert.NextSecond(ctx, cfg); err != nil {
			return err
		}
	}
	res, err := apply.Run(ctx, cfg, env.Log, nodeadvert.Planner(cfg, a, port), f.DryRun)
	if err != nil {
		return err
	}
	res.Program = prog
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// decode reads the document, fills in the defaults and checks the advert.
func decode(env *cli.Env, cfg *nodeconf.Config) (*document, error) {
	var d document
	if err := jsondoc.Decode(env.Stdin, schemas.Get(schemas.JoinAdvertise), &d); err != nil {
		return nil, err
	}
	if d.State == "" {
		d.State = advert.Ready
	}
	if d.Port == 0 {
		d.Port = 22
		if d.Role == advert.RoleMaster {
			d.Port = 1816
		}
	}
	if d.HostKey == "" {
		fp, err := nodeadvert.HostKeyFingerprint(cfg)
		if err != nil {
			return nil, err
		}
		d.HostKey = fp
	}
	if err := d.Check(); err != nil {
		return nil, err
	}
	return &d, nil
}
