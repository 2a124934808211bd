package schemas

import (
	"encoding/json"
	"testing"

	"github.com/nodejoin/nodejoin/internal/jsondoc"
	"github.com/nodejoin/nodejoin/internal/jsonschema"
)

// Every embedded schema compiles, and its $id is where Get registers it.
func TestSchemas(t *testing.T) {
	entries, err := files.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		src, err := Source(e.Name())
		if err != nil {
			t.Fatal(err)
		}
		var s struct {
			ID     string `json:"$id"`
			Schema string `json:"$schema"`
		}
		if err := json.Unmarshal(src, &s); err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		if s.ID != base+e.Name() {
			t.Errorf("%s: $id %q, want %q", e.Name(), s.ID, base+e.Name())
		}
		if _, err := compile(e.Name()); err != nil {
			t.Errorf("%s: %v", e.Name(), err)
		}
	}
	for _, n := range []string{PrepareNodeJoin, NodeDaemonSetup, NodeConfig, SsconfUpdate} {
		if Get(n) == nil {
			t.Errorf("Get(%s) = nil", n)
		}
	}
}

// BenchmarkCompileStart is what a node-side program pays at each start
// for its schemas: prepare-node-join's and node.json's, compiled anew.
//
//	go test -run='^$' -bench=CompileStart -benchmem ./schemas
func BenchmarkCompileStart(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		c := jsonschema.NewCompiler(loadEmbedded, jsondoc.FormatChecks())
		for _, n := range []string{PrepareNodeJoin, NodeConfig} {
			if _, err := c.Compile(base + n); err != nil {
				b.Fatal(err)
			}
		}
	}
}
