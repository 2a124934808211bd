package sshkeys

import (
	"bytes"
	"strings"
	"testing"
)

func TestMergeAuthorized(t *testing.T) {
	line := func(name, comment string) string {
		return strings.TrimSuffix(pubLine(t, testKey(t, Ed25519, 256, name), comment), "\n")
	}
	ecLine := strings.TrimSuffix(pubLine(t, testKey(t, ECDSA, 256, "a"), "ec"), "\n")
	rsaLine := strings.TrimSuffix(readTestdata(t, "rsa_pem.pub"), "\n")
	a, b, c := line("a", "a@x"), line("b", "b@x"), line("c", "c@x")
	aOtherComment := line("a", "other@y")
	aFields := strings.Fields(a)
	aNoComment := aFields[0] + " " + aFields[1]
	foreign := "ssh-foo AAAAnotakey someone"
	tests := []struct {
		name      string
		existing  string
		add       []string
		want      string
		wantAdded int
	}{
		{"empty file", "", []string{a}, a + "\n", 1},
		{"nil add", a + "\n", nil, a + "\n", 0},
		{"append", a + "\n", []string{b, c}, a + "\n" + b + "\n" + c + "\n", 2},
		{"missing final newline", a, []string{b}, a + "\n" + b + "\n", 1},
		{"missing final newline, nothing to add", a, []string{a}, a, 0},
		{"crlf file kept", a + "\r\n", []string{b}, a + "\r\n" + b + "\n", 1},
		{"trailing crlf stripped from add", "", []string{b + "\r\n"}, b + "\n", 1},
		{"same key other comment", a + "\n", []string{aOtherComment}, a + "\n", 0},
		{"same key no comment", a + "\n", []string{aNoComment}, a + "\n", 0},
		{"same key existing has options", `from="10.0.0.0/8",restrict ` + a + "\n", []string{a}, `from="10.0.0.0/8",restrict ` + a + "\n", 0},
		{"same key add has options", a + "\n", []string{"restrict " + aOtherComment}, a + "\n", 0},
		{"extra whitespace", "  " + strings.Replace(a, " ", "\t \t", 1) + "  \n", []string{a}, "  " + strings.Replace(a, " ", "\t \t", 1) + "  \n", 0},
		{"duplicate in batch", "", []string{b, aOtherComment, b, a}, b + "\n" + aOtherComment + "\n", 2},
		{"partial overlap", a + "\n" + c + "\n", []string{a, b, c}, a + "\n" + c + "\n" + b + "\n", 1},
		{"ecdsa and rsa", "", []string{ecLine, rsaLine, ecLine + " again"}, ecLine + "\n" + rsaLine + "\n", 2},
		{"existing lines kept byte for byte",
			"# managed by hand\n\n   \n" + foreign + "\n" + `command="x y" ` + c + "\r\n# end",
			[]string{a, c},
			"# managed by hand\n\n   \n" + foreign + "\n" + `command="x y" ` + c + "\r\n# end\n" + a + "\n", 1},
		{"commented-out key does not count", "# " + a + "\n", []string{a}, "# " + a + "\n" + a + "\n", 1},
		{"unparseable add, identical line exists", foreign + "\n", []string{foreign + "\n"}, foreign + "\n", 0},
		{"unparseable add, identical line with cr exists", foreign + "\r\n", []string{foreign}, foreign + "\r\n", 0},
		{"unparseable add, new", a + "\n", []string{foreign}, a + "\n" + foreign + "\n", 1},
		{"unparseable add twice", "", []string{foreign, foreign}, foreign + "\n", 1},
		{"blank adds skipped", a + "\n", []string{"", " ", "\r\n"}, a + "\n", 0},
		{"multi-line add taken line by line", "", []string{a + "\n" + b + "\r\n\n" + a}, a + "\n" + b + "\n", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			merged, added := MergeAuthorized([]byte(tt.existing), tt.add)
			if string(merged) != tt.want || added != tt.wantAdded {
				t.Errorf("MergeAuthorized = %q, %d\nwant %q, %d", merged, added, tt.want, tt.wantAdded)
			}
			// A second run with the same keys changes nothing.
			again, n := MergeAuthorized(merged, tt.add)
			if n != 0 || !bytes.Equal(again, merged) {
				t.Errorf("second merge added %d: %q", n, again)
			}
		})
	}
}

func TestMergeAuthorizedDoesNotAlias(t *testing.T) {
	existing := []byte("x\n")
	merged, _ := MergeAuthorized(existing, nil)
	merged[0] = 'y'
	if string(existing) != "x\n" {
		t.Error("the merged slice shares memory with existing")
	}
}

func FuzzMergeAuthorized(f *testing.F) {
	a := pubLine(f, testKey(f, Ed25519, 256, "a"), "a")
	b := pubLine(f, testKey(f, ECDSA, 256, "a"), "b")
	f.Add([]byte(""), a, b)
	f.Add([]byte("# c\n"+a), "restrict "+a, b+b)
	f.Add([]byte(a+"\r\n\n  x y z"), "x y z", "\r\n")
	f.Fuzz(func(t *testing.T, existing []byte, add1, add2 string) {
		add := []string{add1, add2}
		merged, added := MergeAuthorized(existing, add)
		if !bytes.HasPrefix(merged, existing) {
			t.Fatalf("existing content not kept: %q -> %q", existing, merged)
		}
		if added == 0 && !bytes.Equal(merged, existing) {
			t.Fatalf("added 0 but content changed: %q -> %q", existing, merged)
		}
		if added > 0 && !bytes.HasSuffix(merged, []byte("\n")) {
			t.Fatalf("merged does not end in a newline: %q", merged)
		}
		if added > 0 && bytes.Count(merged[len(existing):], []byte("\n")) < added {
			t.Fatalf("added %d lines but fewer newlines: %q", added, merged)
		}
		if again, n := MergeAuthorized(merged, add); n != 0 || !bytes.Equal(again, merged) {
			t.Fatalf("not idempotent: second merge added %d", n)
		}
	})
}
