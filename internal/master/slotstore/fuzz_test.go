package slotstore

import (
	"strings"
	"testing"
)

// A report's root key comes from the client: whatever it sends, the check
// does not panic, and what it accepts is in normal form.
func FuzzNormalRootKey(f *testing.F) {
	f.Add(rootKey(f, "root@node3"))
	f.Add("ssh-rsa AAAA")
	f.Add("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 x y z")
	f.Fuzz(func(t *testing.T, k string) {
		n, err := normalRootKey(k)
		if err != nil {
			return
		}
		if again, err := normalRootKey(n + " comment"); err != nil || again != n || strings.Count(n, " ") != 1 {
			t.Fatalf("%q normalised to %q, then %q %v", k, n, again, err)
		}
	})
}

// The slot id comes from the client's URL: an accepted one is canonical.
func FuzzCheckUUID(f *testing.F) {
	f.Add(newUUID())
	f.Add("0F6E3B8A-1C2D-4E5F-8A9B-0C1D2E3F4A5B")
	f.Fuzz(func(t *testing.T, u string) {
		c, err := CheckUUID(u)
		if err != nil {
			return
		}
		if again, err := CheckUUID(c); err != nil || again != c || c != strings.ToLower(c) || strings.ContainsAny(c, "/:") {
			t.Fatalf("%q accepted as %q", u, c)
		}
	})
}
