package cluster

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// niceLessByChunks is the comparison as first written, by regexp chunks:
// the reference the allocation-free niceLess must agree with.
func niceLessByChunks(a, b string) bool {
	re := regexp.MustCompile(`\d+|\D+`)
	ca, cb := re.FindAllString(a, -1), re.FindAllString(b, -1)
	for i := 0; i < len(ca) && i < len(cb); i++ {
		x, y := ca[i], cb[i]
		if x == y {
			continue
		}
		dx, dy := x[0] >= '0' && x[0] <= '9', y[0] >= '0' && y[0] <= '9'
		if dx && dy {
			tx, ty := strings.TrimLeft(x, "0"), strings.TrimLeft(y, "0")
			if len(tx) != len(ty) {
				return len(tx) < len(ty)
			}
			if tx != ty {
				return tx < ty
			}
			continue
		}
		return x < y
	}
	return len(ca) < len(cb)
}

func TestNiceLessAgrees(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := "ab.-0129"
	name := func() string {
		b := make([]byte, r.IntN(8))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	for range 20000 {
		a, b := name(), name()
		if got, want := niceLess(a, b), niceLessByChunks(a, b); got != want {
			t.Fatalf("niceLess(%q, %q) = %v, want %v", a, b, got, want)
		}
	}
}

func BenchmarkNiceSort(b *testing.B) {
	names := make([]string, 1000)
	for i := range names {
		names[i] = "node" + strings.Repeat("x", i%3) + string(rune('0'+i%10)) + ".example.org"
	}
	for range b.N {
		s := append([]string(nil), names...)
		niceSort(s)
	}
}

func TestNiceSort(t *testing.T) {
	in := []string{"node10", "node2", "node1", "a", "node02x"}
	niceSort(in)
	if got := strings.Join(in, " "); got != "a node1 node2 node02x node10" {
		t.Errorf("niceSort = %s", got)
	}
}
