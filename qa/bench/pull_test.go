package main

import (
	"strings"
	"testing"
)

func TestParsePull(t *testing.T) {
	out := `goos: linux
BenchmarkRegistrations/embedded/in-flight=8-2   	       1	3012 ns/op	 22.5 p50-ms	 44.6 p99-ms	 18952 registrations/min
BenchmarkRegistrations/embedded/in-flight=8-2   	       1	3012 ns/op	 20.1 p50-ms	 49.8 p99-ms	 20750 registrations/min
BenchmarkRegistrations/etcd/in-flight=64-2      	       1	3012 ns/op	 601.3 p50-ms	 917.4 p99-ms	 6506 registrations/min
PASS
`
	cases, err := parsePull(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 2 || cases[0].store != "embedded" || cases[0].inFlight != 8 || len(cases[0].perMin) != 2 ||
		cases[1].store != "etcd" || cases[1].inFlight != 64 || cases[1].p99[0] != 917.4 {
		t.Fatalf("%+v %+v", cases[0], cases[1])
	}
	if got := minMedMax([]float64{3, 1, 2}, "%.0f"); got != "1 / 2 / 3" {
		t.Errorf("spread: %q", got)
	}
	if _, err := parsePull("PASS\n"); err == nil {
		t.Error("no benchmark lines: no error")
	}
}

// The section replaces its earlier self and leaves the rest of the file
// alone; a file without it gets it at the end.
func TestSpliceSection(t *testing.T) {
	s := pullSection
	sec := s.begin + "\nnew\n" + s.end + "\n"
	doc := "# Benchmarks\n\nnode-add\n\n" + s.begin + "\nold\n" + s.end + "\n\n## After\n"
	if got := s.splice(doc, sec); got != "# Benchmarks\n\nnode-add\n\n"+sec+"\n## After\n" {
		t.Errorf("replaced:\n%s", got)
	}
	if got := s.in(doc); got != s.begin+"\nold\n"+s.end+"\n" {
		t.Errorf("found:\n%s", got)
	}
	if got := s.splice("# Benchmarks\n\nnode-add\n", sec); got != "# Benchmarks\n\nnode-add\n\n"+sec {
		t.Errorf("appended:\n%s", got)
	}
	if got := s.splice("", sec); !strings.HasPrefix(got, s.begin) {
		t.Errorf("into nothing:\n%s", got)
	}
	if got := registerSection.in(doc); got != "" {
		t.Errorf("another section found: %q", got)
	}
}
