package sshkeys

import (
	"bytes"
	"strings"
	"testing"
)

func TestRemoveAuthorized(t *testing.T) {
	line := func(name, comment string) string {
		return strings.TrimSuffix(pubLine(t, testKey(t, Ed25519, 256, name), comment), "\n")
	}
	ec := strings.TrimSuffix(pubLine(t, testKey(t, ECDSA, 256, "e"), "ec@x"), "\n")
	a, b, c := line("a", "a@x"), line("b", "b@x"), line("c", "c@x")
	aOther := line("a", "other@y")
	restricted := `from="10.0.0.0/8" ` + a
	tests := []struct {
		name        string
		existing    string
		remove      []string
		want        string
		wantRemoved int
	}{
		{"empty file", "", []string{a}, "", 0},
		{"nothing to remove", a + "\n", nil, a + "\n", 0},
		{"one of three", a + "\n" + b + "\n" + c + "\n", []string{b}, a + "\n" + c + "\n", 1},
		// Ganeti's testAddAndRemoveDuplicates: every occurrence goes.
		{"every occurrence", a + "\n" + b + "\n" + b + "\n", []string{b}, a + "\n", 2},
		{"other comment, same key", a + "\n" + b + "\n", []string{aOther}, b + "\n", 1},
		{"ecdsa by key", ec + "\n" + a + "\n", []string{strings.Replace(ec, "ec@x", "z", 1)}, a + "\n", 1},
		{"options kept", restricted + "\n" + a + "\n", []string{a}, restricted + "\n", 1},
		{"options line by its fields", restricted + "\n" + b + "\n", []string{restricted}, b + "\n", 1},
		{"comments and blank lines kept", "# mine\n\n" + a + "\n", []string{a}, "# mine\n\n", 1},
		{"last line without newline", b + "\n" + a, []string{a}, b + "\n", 1},
		{"crlf lines", a + "\r\n" + b + "\r\n", []string{a + "\n"}, b + "\r\n", 1},
		{"foreign line by fields", "ssh-foo AAAA x\n" + a + "\n", []string{"ssh-foo  AAAA x"}, a + "\n", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, n := RemoveAuthorized([]byte(tc.existing), tc.remove)
			if string(got) != tc.want || n != tc.wantRemoved {
				t.Errorf("RemoveAuthorized = %q, %d; want %q, %d", got, n, tc.want, tc.wantRemoved)
			}
		})
	}
}

func FuzzRemoveAuthorized(f *testing.F) {
	a := pubLine(f, testKey(f, Ed25519, 256, "a"), "a")
	f.Add([]byte(a+"# c\n"+a), a)
	f.Add([]byte("from=\"x\" "+a+"\r\n\n  x y z"), "x y z")
	f.Fuzz(func(t *testing.T, existing []byte, key string) {
		out, removed := RemoveAuthorized(existing, []string{key})
		if removed == 0 && !bytes.Equal(out, existing) {
			t.Fatalf("removed 0 but content changed: %q -> %q", existing, out)
		}
		if len(out) > len(existing) {
			t.Fatalf("removal grew the file: %q -> %q", existing, out)
		}
		if again, n := RemoveAuthorized(out, []string{key}); n != 0 || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: a second removal took %d lines", n)
		}
	})
}
