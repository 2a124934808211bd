package cloudconfig

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/joinapi"
)

// Fixed test values: the secret is 43 base64url characters, as
// join-service makes them, and easy to find in an output.
const (
	testUUID   = "5b0e8a52-35f1-4c8e-a1d2-6f6e2b7d9c01"
	testSecret = "SECRETq8Yb2mFzXw4dC0kLp9sVtRuNoPaQeBfGhIjK"
	testPin    = "sha256:3f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8"
)

func testToken() string {
	return joinapi.Token{UUID: testUUID, Host: "10.0.0.1", Secret: testSecret, Pins: []string{testPin}}.BootParam()
}

func freeSlot() Slot {
	return Slot{UUID: testUUID, State: "free", MaxUses: 1, Expires: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
}

var testFiles = []NodeFile{
	{Name: "node-join", SHA256: strings.Repeat("a", 64)},
	{Name: "prepare-node-join", SHA256: strings.Repeat("b", 64)},
}

// render decodes doc (with the test token put in for TOKEN) and renders it.
func render(t *testing.T, doc string, slot Slot) (*Rendered, error) {
	t.Helper()
	in, tok, err := Decode(bytes.NewBufferString(strings.ReplaceAll(doc, "TOKEN", testToken())))
	if err != nil {
		return nil, err
	}
	return Render(in, tok, Facts{Slot: slot, Files: testFiles})
}

func mustRender(t *testing.T, doc string) *Rendered {
	t.Helper()
	r, err := render(t, doc, freeSlot())
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return r
}
