package main

import (
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// pullRuns is how many boot storms each case runs.
const pullRuns = 3

// pullCommand is join-service's benchmark as the section states it.
var pullCommand = []string{"go", "test", "-run", "^$", "-bench", "^BenchmarkRegistrations$", "-benchtime", "1x",
	"-count", strconv.Itoa(pullRuns), "./internal/master/joinservice/"}

// pullSection is join-service's benchmark.
var pullSection = &section{
	name:    "pull-mode",
	begin:   "<!-- pull mode: written by go run ./qa/bench -pull -->",
	end:     "<!-- end of pull mode -->",
	command: pullCommand,
	render: func(stdout, loadBefore string, took time.Duration) (string, error) {
		cases, err := parsePull(stdout)
		if err != nil {
			return "", err
		}
		return renderPull(cases, loadBefore, took), nil
	},
}

// pullCase is one store at one number of requests in flight, over the runs.
type pullCase struct {
	store    string
	inFlight int
	perMin   []float64
	p50, p99 []float64
}

var benchLine = regexp.MustCompile(`^BenchmarkRegistrations/(\w+)/in-flight=(\d+)(?:-\d+)?\s+\d+\s+(.*)$`)

// parsePull reads go test's benchmark lines into one case per store and
// number in flight, in the order they came.
func parsePull(text string) ([]*pullCase, error) {
	var cases []*pullCase
	byName := map[string]*pullCase{}
	for _, line := range strings.Split(text, "\n") {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		c := byName[m[1]+"/"+m[2]]
		if c == nil {
			n, _ := strconv.Atoi(m[2])
			c = &pullCase{store: m[1], inFlight: n}
			byName[m[1]+"/"+m[2]] = c
			cases = append(cases, c)
		}
		f := strings.Fields(m[3])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("benchmark line %q: %w", line, err)
			}
			switch f[i+1] {
			case "registrations/min":
				c.perMin = append(c.perMin, v)
			case "p50-ms":
				c.p50 = append(c.p50, v)
			case "p99-ms":
				c.p99 = append(c.p99, v)
			}
		}
	}
	if len(cases) == 0 {
		return nil, fmt.Errorf("no BenchmarkRegistrations lines in go test's output")
	}
	return cases, nil
}

// minMedMax is min / median / max.
func minMedMax(v []float64, format string) string {
	if len(v) == 0 {
		return "-"
	}
	s := slices.Clone(v)
	slices.Sort(s)
	f := func(x float64) string { return fmt.Sprintf(format, x) }
	return f(s[0]) + " / " + f(s[len(s)/2]) + " / " + f(s[len(s)-1])
}

func renderPull(cases []*pullCase, loadBefore string, took time.Duration) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("## Pull mode: join-service registrations")
	w("")
	b.WriteString(written("-pull", took, loadBefore, ", "+etcdVersion()))
	w("")
	w("`%s` (`BenchmarkRegistrations`, internal/master/joinservice): 1,000 simulated machines, each from its own", strings.Join(pullCommand, " "))
	w("loopback address, fetch their documents and report `joined` over TLS (handshake included, trust by")
	w("pin) to a fresh master, N at a time; the master records every node (cluster files fsynced) and")
	w("pushes ssconf after the joins. Stores: the embedded bbolt store (every commit fsynced), and three")
	w("etcd members with client TLS on loopback (`internal/fixture/etcdtest`, a fresh key prefix per run).")
	w("One run is one such boot storm; each figure is min / median / max of %d runs, the percentiles of", pullRuns)
	w("one registration (fetch + report) within each run.")
	w("")
	w("| store | in flight | registrations per minute | p50 (ms) | p99 (ms) |")
	w("|---|---:|---:|---:|---:|")
	for _, c := range cases {
		w("| %s | %d | %s | %s | %s |", c.store, c.inFlight, minMedMax(c.perMin, "%.0f"), minMedMax(c.p50, "%.1f"), minMedMax(c.p99, "%.1f"))
	}
	w("")
	w("The issue's goal is at least 10,000 registrations per minute with p99 under 50 ms on the embedded")
	w("store; read the figures with the load beside them (2 cores, shared with other work).")
	return b.String()
}

func loadAvg() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], ", ")
}

func etcdVersion() string {
	out, err := exec.Command("etcd", "--version").Output()
	if err != nil {
		return "etcd unknown"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return "etcd " + strings.TrimSpace(strings.TrimPrefix(line, "etcd Version:"))
}
