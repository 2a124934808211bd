package schemas_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/schemas"
)

// BenchmarkValidate checks the typical documents (internal/fixture),
// already parsed, with the programs' validator and with v5. Run:
//
//	go test -run='^$' -bench=Validate -benchmem ./schemas
func BenchmarkValidate(b *testing.B) {
	c, err := fixture.NewCluster("cluster.nodejoin.test")
	if err != nil {
		b.Fatal(err)
	}
	ref := newV5(b)
	for _, d := range []struct {
		name string
		doc  []byte
	}{
		{schemas.PrepareNodeJoin, fixture.JSON(c.Prepare())},
		{schemas.NodeDaemonSetup, fixture.JSON(c.DaemonSetup("node1.cluster.nodejoin.test"))},
	} {
		dec := json.NewDecoder(bytes.NewReader(d.doc))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			b.Fatal(err)
		}
		b.Run(d.name, func(b *testing.B) {
			b.ReportAllocs()
			s := schemas.Get(d.name)
			for b.Loop() {
				if errs := s.Validate(v); len(errs) > 0 {
					b.Fatal(errs)
				}
			}
		})
		b.Run(d.name+"/v5", func(b *testing.B) {
			b.ReportAllocs()
			s, err := ref.Compile(base + d.name)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := s.Validate(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
