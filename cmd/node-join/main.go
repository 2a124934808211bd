// Node-join joins this machine to a cluster in pull mode: with a token
// (flags and a secret file, the kernel command line, or a token file) it
// fetches its two documents from the master's join-service, trusting the
// master by the token's pins only, applies them with prepare-node-join's
// and node-daemon-setup's code, and reports back. See doc/node-join.8.md.
package main

import (
	"os"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
)

const prog = "node-join"

func main() { os.Exit(cli.Main(prog, os.Args[1:], run)) }
