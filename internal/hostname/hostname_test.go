package hostname

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	long := strings.Repeat(label63+".", 3) + strings.Repeat("b", 62) // 254 bytes
	for _, tc := range []struct{ name, in, wantErr string }{
		{"one label", "node1", ""},
		{"dotted", "node1.example.org", ""},
		{"digits first", "1node.example.org", ""},
		{"upper case", "Node1.Example.ORG", ""},
		{"address form", "192.0.2.1", ""},
		{"label of 63", label63 + ".org", ""},
		{"253 bytes", long[1:], ""},
		{"empty", "", "empty"},
		{"254 bytes", long, "longer than 253 bytes"},
		{"NUL", "c1\x00.example.org", "byte 2 (0x00) is not a letter, digit, '-' or '.'"},
		{"newline", "c1\nmaster", "byte 2 (0x0a) is not a letter, digit, '-' or '.'"},
		{"slash", "c1/CN=master", "byte 2 ('/') is not a letter, digit, '-' or '.'"},
		{"space", "bad name", "byte 3 (' ') is not a letter, digit, '-' or '.'"},
		{"underscore", "bad_name", "byte 3 ('_') is not a letter, digit, '-' or '.'"},
		{"utf-8", "nöde", "byte 1 (0xc3) is not a letter, digit, '-' or '.'"},
		{"trailing dot", "node1.example.org.", "must not end with '.'"},
		{"leading dot", ".example.org", "label 1 is empty"},
		{"double dot", "node1..org", "label 2 is empty"},
		{"label of 64", "x." + label63 + "a", "label 2 is longer than 63 bytes"},
		{"leading hyphen", "-node", "label 1 starts with '-'"},
		{"trailing hyphen", "node1.example-", "label 2 ends with '-'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if err := Check(tc.in); err != nil {
				got = err.Error()
			}
			if got != tc.wantErr {
				t.Errorf("Check(%q) = %q, want %q", tc.in, got, tc.wantErr)
			}
		})
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{"node1.example.org", "a-b.c", "x..y", "-a", "a\x00b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if Check(s) != nil {
			return
		}
		// What passes can go into a line-based file or a certificate subject.
		if len(s) > MaxLen || strings.ContainsAny(s, "\x00\n\r /=,_ ") || strings.HasPrefix(s, "-") ||
			strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
			t.Fatalf("accepted %q", s)
		}
	})
}
