// Ssl-update makes the node a new client certificate signed by its cluster
// certificate, or deletes it, from Ganeti's ssl_update document on standard
// input, as Ganeti's tool of the same name does. See doc/ssl-update.8.md.
package main

import (
	"os"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/cmd/internal/nodeprog"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/node/sslupdate"
)

const prog = "ssl-update"

const usage = `Usage: ssl-update [flags] < document.json

With action "create", makes a new client certificate (client.pem) signed by
the node's cluster certificate; with "delete", removes client.pem and
ssconf_master_candidates_certs. Reads Ganeti's ssl_update document on
standard input; prints a JSON result on standard output. Exit status: 0
done, 1 failed and rolled back, 2 usage, 3 input rejected.`

var program = nodeprog.Program[joindoc.SSLUpdate]{Name: prog, Usage: usage, Decode: joindoc.DecodeSSLUpdate, Planner: sslupdate.Planner}

func main() { os.Exit(cli.Main(prog, os.Args[1:], program.Run)) }
