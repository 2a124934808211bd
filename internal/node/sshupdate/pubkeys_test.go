package sshupdate

import (
	"strings"
	"testing"

	"github.com/nodejoin/nodejoin/internal/joindoc"
)

// TestParsePubKeys reads the file as Ganeti's _ParseKeyLine: blank lines
// skipped, a line without a space refused.
func TestParsePubKeys(t *testing.T) {
	got, err := parsePubKeys("f", []byte("n1 ssh-rsa AAAA c  \n\n  \nn2 ssh-ed25519 BBBB\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != (pubKey{"n1", "ssh-rsa AAAA c"}) || got[1] != (pubKey{"n2", "ssh-ed25519 BBBB"}) {
		t.Errorf("got %+v", got)
	}
	if _, err := parsePubKeys("f", []byte("n1 k\nlonely\n")); err == nil || err.Error() != `f: line 2: not "<node> <key>"` {
		t.Errorf("err = %v", err)
	}
}

func FuzzPubKeys(f *testing.F) {
	f.Add([]byte("n1 ssh-rsa AAAA c\nn2 k\n"), "add", "n1", "k2")
	f.Add([]byte(""), "replace_or_add", "n3", "k")
	f.Fuzz(func(t *testing.T, data []byte, action, node, key string) {
		// ssh-update's checks let through only nodes without white space
		// and one-line keys with no trailing white space.
		if node == "" || containsSpace(node) || key == "" || strings.ContainsAny(key, "\r\n") || key != trimRight(key) {
			return
		}
		old, err := parsePubKeys("f", data)
		if err != nil {
			return
		}
		a := &joindoc.KeyAction{Action: action, Keys: joindoc.KeyMap{{Node: node, Keys: []string{key}}}}
		out := renderPubKeys(applyPubKeys(old, a))
		// What ssh-update writes it reads back the same, and an add, a
		// remove or a replace done twice is done once.
		back, err := parsePubKeys("f", out)
		if err != nil {
			t.Fatalf("cannot read back %q: %v", out, err)
		}
		if string(renderPubKeys(back)) != string(out) {
			t.Fatalf("read back differently: %q", out)
		}
		if again := renderPubKeys(applyPubKeys(back, a)); string(again) != string(out) {
			t.Fatalf("%s twice differs from once:\n%q\n%q", action, out, again)
		}
	})
}

func containsSpace(s string) bool {
	for _, r := range s {
		if isSpace(r) {
			return true
		}
	}
	return false
}

func trimRight(s string) string {
	for len(s) > 0 && isSpace(rune(s[len(s)-1])) {
		s = s[:len(s)-1]
	}
	return s
}
