// Ssh-update changes the login user's authorized_keys and the cluster's
// public key file, and makes the login user a new key pair, from Ganeti's
// ssh_update document on standard input, as Ganeti's tool of the same name
// does, in one transaction. See doc/ssh-update.8.md.
package main

import (
	"os"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/cmd/internal/nodeprog"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/node/sshupdate"
)

const prog = "ssh-update"

const usage = `Usage: ssh-update [flags] < document.json

Adds or removes keys in the login user's authorized_keys, changes the
cluster's public key file (ganeti_pub_keys: add, remove, override, clear,
replace_or_add) and generates a new key pair for the login user, from
Ganeti's ssh_update document on standard input, all in one transaction.
Prints a JSON result on standard output. Exit status: 0 done, 1 failed and
rolled back, 2 usage, 3 input rejected.`

var program = nodeprog.Program[joindoc.SSHUpdate]{Name: prog, Usage: usage, Decode: joindoc.DecodeSSHUpdate, Planner: sshupdate.Planner}

func main() { os.Exit(cli.Main(prog, os.Args[1:], program.Run)) }
