// Node-cleanup removes from a node what joining its cluster wrote there,
// as its join record says, and stops the node daemon: the node leaves the
// cluster. See doc/node-cleanup.8.md.
package main

import (
	"os"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/cmd/internal/nodeprog"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/node/cleanup"
)

const prog = "node-cleanup"

const usage = `Usage: node-cleanup [flags] < document.json

Takes the node out of its cluster: puts back the node's own SSH host keys
and root keys, takes the cluster's lines out of authorized_keys, removes
the ssconf files, hmac.key and certificates the join wrote, restarts sshd
if a host key changed and stops the node daemon. What changed since the
join is kept and listed under "kept". The document names the cluster:
{"cluster_name": "..."}. Prints a JSON result on standard output. Exit
status: 0 done, 1 failed and rolled back, 2 usage, 3 input rejected.`

var program = nodeprog.Program[joindoc.Cleanup]{Name: prog, Usage: usage, Decode: joindoc.DecodeCleanup, Planner: cleanup.Planner}

func main() { os.Exit(cli.Main(prog, os.Args[1:], program.Run)) }
