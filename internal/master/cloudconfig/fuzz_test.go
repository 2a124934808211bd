package cloudconfig

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzRender: any document either is refused (exit 3) or renders user-data
// that passes cloud-init's schema, holds the secret once, and starts by
// closing the token's directory.
func FuzzRender(f *testing.F) {
	samples, _ := filepath.Glob("testdata/samples/*.json")
	for _, s := range samples {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(bytes.ReplaceAll(b, []byte("TOKEN"), []byte(testToken())))
	}
	f.Add([]byte(strings.ReplaceAll(everything, "TOKEN", testToken())))
	f.Fuzz(func(t *testing.T, doc []byte) {
		in, tok, err := Decode(bytes.NewReader(doc))
		if err != nil {
			return
		}
		slot := withConfig()
		slot.UUID = tok.UUID
		r, err := Render(in, tok, Facts{Slot: slot, Files: testFiles})
		if err != nil {
			return
		}
		if err := Validate(r.UserData); err != nil {
			t.Fatalf("rendered user-data fails cloud-init's schema: %v", err)
		}
		// Counted with a fresh random secret of the same length: the
		// fuzzer's may be a run of one character that a pin's hex holds too.
		b := make([]byte, len(tok.Secret))
		_, _ = rand.Read(b)
		tok.Secret = base64.RawURLEncoding.EncodeToString(b)[:len(tok.Secret)]
		r2, err := Render(in, tok, Facts{Slot: slot, Files: testFiles})
		if err != nil {
			t.Fatalf("rendered with one secret, refused with another: %v", err)
		}
		if n := bytes.Count(r2.UserData, []byte(tok.Secret)); n != 1 {
			t.Fatalf("the secret appears %d times", n)
		}
		if !bytes.Contains(r.UserData, []byte("bootcmd:\n  - [install, -d, -m, \"0700\", -o, root, -g, root, "+stageDir+"]\n")) {
			t.Fatalf("the first bootcmd does not close %s:\n%s", stageDir, r.UserData)
		}
	})
}
