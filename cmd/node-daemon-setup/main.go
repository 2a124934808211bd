// Node-daemon-setup writes a node's ssconf files, HMAC key and node daemon
// certificates from the JSON document on standard input, as Ganeti's tool
// of the same name does, and (re)starts the node daemon. See
// doc/node-daemon-setup.8.md.
package main

import (
	"os"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/cmd/internal/nodeprog"
	"github.com/nodejoin/nodejoin/internal/joindoc"
)

const prog = "node-daemon-setup"

const usage = `Usage: node-daemon-setup [flags] < document.json

Writes the ssconf files, hmac.key, server.pem and a client certificate
(client.pem) from the JSON document on standard input, and (re)starts the
node daemon when the document asks for it. Prints a JSON result on standard
output. Exit status: 0 done, 1 failed and rolled back, 2 usage, 3 input
rejected.`

var program = nodeprog.Program[joindoc.DaemonSetup]{Name: prog, Usage: usage, Decode: joindoc.DecodeDaemonSetup, Planner: planner}

func main() { os.Exit(cli.Main(prog, os.Args[1:], program.Run)) }
