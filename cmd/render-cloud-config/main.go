// Render-cloud-config prints #cloud-config user-data that makes a fresh
// machine join the cluster at first boot with a slot of join-service's,
// from the JSON document on standard input. See
// doc/render-cloud-config.8.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/master/cloudconfig"
	"github.com/nodejoin/nodejoin/internal/master/joinservice"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
)

const prog = "render-cloud-config"

const usage = `Usage: render-cloud-config [flags] < input.json > user-data

Prints #cloud-config user-data that, at a fresh machine's first boot,
installs the node programs, writes the slot's token root-only into a
directory closed to others, runs node-join with it, removes it, and runs the
operator's packages, apt sources, files and scripts around the join. The
slot's state is asked of the running join-service (its admin socket): a
spent or expired slot is refused. The output is checked against cloud-init's
own schema before it is printed; it holds the slot's secret.
Exit status: 0 printed, 1 failed (join-service not reached), 2 usage,
3 input refused.`

func main() { os.Exit(cli.Main(prog, os.Args[1:], run)) }

func run(env *cli.Env, args []string) error {
	var f cli.Flags
	fs := cli.NewFlagSet(prog, usage, &f)
	root := fs.String("root", "/", "take every path under `DIR` (tests and QA)")
	socket := fs.String("socket", "", "join-service's admin socket `PATH` (default <run dir>/join-service.sock, /run/nodejoin)")
	filesDir := fs.String("files-dir", "", "the node programs join-service serves, in `DIR` (default <state dir>/"+joinservice.FilesDirName+", /var/lib/nodejoin)")
	output := fs.String("output", "", "write the user-data to a new `FILE`, created 0600, instead of standard output")
	if err := cli.Parse(env, fs, &f, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return problem.Usagef("no arguments are expected; the document is read on standard input")
	}
	in, tok, err := cloudconfig.Decode(env.Stdin)
	if err != nil {
		return err
	}
	cfg, err := nodeconf.Load(*root)
	if err != nil {
		return err
	}
	if *socket == "" {
		*socket = cfg.Path(filepath.Join(cfg.RunDir, "join-service.sock"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var facts cloudconfig.Facts
	cl := joinservice.NewAdminClient(*socket)
	if err := cl.Do(ctx, http.MethodGet, "/admin/v1/slots/"+tok.UUID, nil, nil, &facts.Slot); err != nil {
		var ae *joinservice.AdminError
		if errors.As(err, &ae) && ae.Rejected() {
			return problem.Reject("/token", "join-service: slot %s: %s", tok.UUID, ae.Body.Message).
				WithHint("the token must be a slot of this master's join-service (join-service slot list)")
		}
		return fmt.Errorf("asking join-service for slot %s: %w", tok.UUID, err)
	}
	if in.Install.From == cloudconfig.FromJoinService {
		dir := *filesDir
		if dir == "" {
			if dir, err = joinservice.FilesDir(*root); err != nil {
				return err
			}
		}
		files, err := joinservice.NodeFiles(dir)
		if err != nil {
			return problem.Reject("/install", "join-service's node programs: %v", err).
				WithHint("copy node-join, prepare-node-join, node-daemon-setup and noded (the nodejoin-node package's programs) into " + dir)
		}
		for _, nf := range files {
			facts.Files = append(facts.Files, cloudconfig.NodeFile{Name: nf.Name, SHA256: nf.SHA256})
		}
	}
	r, err := cloudconfig.Render(in, tok, facts)
	if err != nil {
		return err
	}
	for _, w := range r.Warnings {
		cli.PrintWarning(env.Stderr, prog, w)
	}
	env.Log.Info("rendered", "slot", tok.UUID, "bytes", len(r.UserData))
	if f.DryRun {
		_, err := fmt.Fprintf(env.Stdout, "{\"dry_run\": true, \"slot\": %q, \"bytes\": %d}\n", tok.UUID, len(r.UserData))
		return err
	}
	if *output == "" {
		_, err := env.Stdout.Write(r.UserData)
		return err
	}
	return writeNew(*output, r.UserData)
}

// writeNew creates path 0600 from the first byte (the user-data holds the
// slot's secret), refusing one that exists (O_EXCL: a link too).
func writeNew(path string, data []byte) error {
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return problem.Reject("--output", "%v", err)
	}
	if _, err := fh.Write(data); err != nil {
		fh.Close()
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return fh.Close()
}
