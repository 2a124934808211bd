// Package schemas holds the JSON Schema of every document nodejoin reads,
// embedded in the binaries. The files are the published contract; the Go
// types in internal/joindoc and internal/nodeconf follow them.
package schemas

import (
	"embed"
	"fmt"
	"strings"
	"sync"

	"github.com/nodejoin/nodejoin/internal/jsondoc"
	"github.com/nodejoin/nodejoin/internal/jsonschema"
)

//go:embed *.json
var files embed.FS

// Names of the schemas, as their files are named.
const (
	PrepareNodeJoin = "prepare-node-join.v1.json"
	NodeDaemonSetup = "node-daemon-setup.v1.json"
	NodeConfig      = "node.v1.json"
	SsconfUpdate    = "ssconf-update.v1.json"
	SlotAdd         = "slot-add.v1.json"
	CallbackSetup   = "callback-setup.v1.json"
	CallbackGrant   = "callback-grant.v1.json"
	NodeCleanup     = "node-cleanup.v1.json"
	JoinAdvertise   = "join-advertise.v1.json"
	CloudConfig     = "render-cloud-config.v1.json"
	// Rotation: Ganeti's ssh_update and ssl_update documents.
	SSHUpdate = "ssh-update.v1.json"
	SSLUpdate = "ssl-update.v1.json"
)

// base is the prefix of every schema's $id; each schema is registered under
// its absolute $id so that no name resolves against the working directory.
const base = "https://github.com/nodejoin/nodejoin/schemas/"

var (
	mu       sync.Mutex
	compiler *jsonschema.Compiler
	compiled = map[string]*jsonschema.Schema{}
)

// Get returns the compiled schema of the given name; an embedded schema that
// does not compile is a bug, caught by the package's tests. Every schema of
// a process is compiled by one compiler, which reads an embedded file only
// when a schema being compiled needs it: a node-side program compiles two
// of them at each start, and parsing and checking every file for each was
// a third of the run of a program that changes nothing.
func Get(name string) *jsonschema.Schema {
	mu.Lock()
	defer mu.Unlock()
	if s, ok := compiled[name]; ok {
		return s
	}
	s, err := compile(name)
	if err != nil {
		panic(err)
	}
	compiled[name] = s
	return s
}

// compile compiles name; another schema it refers to (a part of another,
// such as hostName) is loaded from the embedded files by its $id.
func compile(name string) (*jsonschema.Schema, error) {
	if compiler == nil {
		compiler = jsonschema.NewCompiler(loadEmbedded, jsondoc.FormatChecks())
	}
	return compiler.Compile(base + name)
}

// loadEmbedded opens the embedded schema whose $id is url; no other URL is
// loaded, so no schema reaches the network or the working directory.
func loadEmbedded(url string) ([]byte, error) {
	name, ok := strings.CutPrefix(url, base)
	if !ok || strings.Contains(name, "/") {
		return nil, fmt.Errorf("schema %s: only the embedded schemas (%s...) may be referred to", url, base)
	}
	data, err := files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", url, err)
	}
	return data, nil
}

// Source returns the text of a schema (for --print-schema).
func Source(name string) ([]byte, error) { return files.ReadFile(name) }
