// Package schemas holds the JSON Schema of every document nodejoin reads,
// embedded in the binaries. The files are the published contract; the Go
// types in internal/joindoc and internal/nodeconf follow them.
package schemas

import (
	"bytes"
	"embed"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/nodejoin/nodejoin/internal/jsondoc"
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
	compiled = map[string]*jsonschema.Schema{}
)

// Get returns the compiled schema of the given name; an embedded schema that
// does not compile is a bug, caught by the package's tests.
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

// compile compiles name with every embedded schema registered, so that one
// schema may refer to a part of another.
func compile(name string) (*jsonschema.Schema, error) {
	entries, err := files.ReadDir(".")
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	jsondoc.AddFormats(c)
	for _, e := range entries {
		data, err := files.ReadFile(e.Name())
		if err != nil {
			return nil, err
		}
		if err := c.AddResource(base+e.Name(), bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("schema %s: %w", e.Name(), err)
		}
	}
	return c.Compile(base + name)
}

// Source returns the text of a schema (for --print-schema).
func Source(name string) ([]byte, error) { return files.ReadFile(name) }
