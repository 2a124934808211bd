package cloudconfig

import (
	"bytes"
	"strings"
	"testing"
)

// BenchmarkRender: decoding the input with every key, rendering it and
// validating the output against cloud-init's schema (compiled once per
// process), as render-cloud-config does once per machine.
func BenchmarkRender(b *testing.B) {
	doc := []byte(strings.ReplaceAll(everything, "TOKEN", testToken()))
	slot := withConfig()
	b.ReportAllocs()
	for b.Loop() {
		in, tok, err := Decode(bytes.NewReader(doc))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Render(in, tok, Facts{Slot: slot, Files: testFiles}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidate: cloud-init's schema alone, on the same output.
func BenchmarkValidate(b *testing.B) {
	in, tok, err := Decode(strings.NewReader(strings.ReplaceAll(everything, "TOKEN", testToken())))
	if err != nil {
		b.Fatal(err)
	}
	r, err := Render(in, tok, Facts{Slot: withConfig(), Files: testFiles})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := Validate(r.UserData); err != nil {
			b.Fatal(err)
		}
	}
}
