package jsondoc

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// shapes build documents of about n bytes in the shapes that cost a
// decoder most: nesting (a pointer or a stack frame per level), many
// values (a tree node and, for a bad one, a schema error each), long
// strings (copies).
var shapes = []struct {
	name  string
	build func(n int) string
}{
	{"deep-arrays", func(n int) string { return strings.Repeat("[", n/2) + strings.Repeat("]", n/2) }},
	{"deep-objects", func(n int) string {
		k := n / 6
		return strings.Repeat(`{"a":`, k) + "0" + strings.Repeat("}", k)
	}},
	{"wide-array", func(n int) string {
		return `{"name": "x", "list": [` + strings.Repeat("0,", n/2-16) + "0]}"
	}},
	{"many-keys", func(n int) string {
		var b strings.Builder
		b.WriteString(`{"name": "x"`)
		for i := 0; b.Len() < n-16; i++ {
			fmt.Fprintf(&b, `, "k%d": 0`, i)
		}
		b.WriteString("}")
		return b.String()
	}},
	{"long-string", func(n int) string { return `{"name": "` + strings.Repeat("a", n-16) + `"}` }},
}

// BenchmarkDecodeShapes reports the bytes allocated per byte of input
// ("B/byte"): it stays bounded as the input grows for every shape. Run:
//
//	go test -run='^$' -bench=DecodeShapes -benchmem ./internal/jsondoc
func BenchmarkDecodeShapes(b *testing.B) {
	s := compileTest(b)
	for _, sh := range shapes {
		for _, size := range []int{16 << 10, 64 << 10, 256 << 10, MaxSize - 64} {
			in := []byte(sh.build(size))
			b.Run(fmt.Sprintf("%s/%dKiB", sh.name, len(in)>>10), func(b *testing.B) {
				b.ReportAllocs()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				for i := 0; i < b.N; i++ {
					var d testDoc
					_ = DecodeBytes(in, s, &d)
				}
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/float64(len(in)), "B/byte")
			})
		}
	}
}
