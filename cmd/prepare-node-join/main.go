// Prepare-node-join sets up a node's SSH daemon and the login user's SSH
// keys from the JSON document on standard input, as Ganeti's tool of the
// same name does, and restarts sshd. See doc/prepare-node-join.8.md.
package main

import (
	"os"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/cmd/internal/nodeprog"
	"github.com/nodejoin/nodejoin/internal/joindoc"
)

const prog = "prepare-node-join"

const usage = `Usage: prepare-node-join [flags] < document.json

Installs the cluster's SSH host keys, the login user's SSH keys and
authorized_keys from the JSON document on standard input, checks sshd's
configuration and restarts sshd. Prints a JSON result on standard output.
Exit status: 0 done, 1 failed and rolled back, 2 usage, 3 input rejected.`

var program = nodeprog.Program[joindoc.Prepare]{Name: prog, Usage: usage, Decode: joindoc.DecodePrepare, Planner: planner}

func main() { os.Exit(cli.Main(prog, os.Args[1:], program.Run)) }
