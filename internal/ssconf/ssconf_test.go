package ssconf

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodejoin/nodejoin/schemas"
)

func TestFormat(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"cluster.example.com", "cluster.example.com\n"},
		{"value\nwith\nnewlines\n", "value\nwith\nnewlines\n"},
		{"", ""},
	} {
		if got := string(Format(tc.in)); got != tc.want {
			t.Errorf("Format(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCheckSize(t *testing.T) {
	if err := CheckSize(strings.Repeat("a", MaxSize-1)); err != nil {
		t.Errorf("128 KiB with its newline: %v", err)
	}
	err := CheckSize(strings.Repeat("a", MaxSize))
	if err == nil || err.Error() != "the value has 131073 bytes; at most 131072 are allowed" {
		t.Errorf("128 KiB + newline: got %v", err)
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		data    string
		want    string
		wantErr bool
	}{
		"plain":     {data: "cluster.example.com\n", want: "cluster.example.com"},
		"newlines":  {data: "cluster.example.com\n\n", want: "cluster.example.com"},
		"empty":     {data: "", want: ""},
		"max":       {data: strings.Repeat("a", MaxSize), want: strings.Repeat("a", MaxSize)},
		"too large": {data: strings.Repeat("a", MaxSize+1), wantErr: true},
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(tc.data), 0o444); err != nil {
			t.Fatal(err)
		}
		got, err := Read(p)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%s: Read = %.20q, %v", name, got, err)
		}
	}
}

// The schema's list of ssconf keys and Keys must not drift apart.
func TestKeysMatchSchema(t *testing.T) {
	src, err := schemas.Source(schemas.NodeDaemonSetup)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Defs struct {
			SsconfKey struct {
				Enum []string `json:"enum"`
			} `json:"ssconfKey"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(src, &s); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Defs.SsconfKey.Enum, Keys) {
		t.Errorf("schema ssconf keys %v\n differ from ssconf.Keys %v", s.Defs.SsconfKey.Enum, Keys)
	}
}
