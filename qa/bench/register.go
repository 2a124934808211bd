package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/nodejoin/nodejoin/qa/clusterlab"
)

// The auto-registration section of doc/benchmarks.md lies between these
// lines; `-register` replaces it there, or appends it.
const (
	registerBegin = "<!-- auto-registration: written by go run ./qa/bench -register -->"
	registerEnd   = "<!-- end of auto-registration -->"
	registerRuns  = 5
)

var registerCommand = []string{"go", "test", "-run", "^$", "-bench", "^BenchmarkAdvertToRegistered$", "-benchtime", "1x",
	"-count", strconv.Itoa(registerRuns), "./internal/master/joinservice/"}

var registerLine = regexp.MustCompile(`^BenchmarkAdvertToRegistered/hosts=(\d+)(?:-\d+)?\s+\d+\s+([0-9.]+) ms/batch`)

// runRegister runs BenchmarkAdvertToRegistered and writes its section.
func runRegister(out string) error {
	root, err := clusterlab.ModuleRoot()
	if err != nil {
		return err
	}
	before, start := loadAvg(), time.Now()
	cmd := exec.Command(registerCommand[0], registerCommand[1:]...)
	cmd.Dir = root
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&stdout, os.Stderr), os.Stderr
	fmt.Fprintf(os.Stderr, "bench: %s\n", strings.Join(registerCommand, " "))
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(registerCommand, " "), err)
	}
	var hosts []int
	ms := map[int][]float64{}
	for _, l := range strings.Split(stdout.String(), "\n") {
		m := registerLine.FindStringSubmatch(strings.TrimSpace(l))
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		v, _ := strconv.ParseFloat(m[2], 64)
		if _, ok := ms[n]; !ok {
			hosts = append(hosts, n)
		}
		ms[n] = append(ms[n], v)
	}
	if len(hosts) == 0 {
		return fmt.Errorf("no BenchmarkAdvertToRegistered lines in the output")
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w(registerBegin)
	w("## Auto-registration: advert to registered")
	w("")
	w("Written by `go run ./qa/bench -register` (a step of `make bench`) on %s in %v, on %s, %d cores",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), time.Since(start).Round(time.Second), cpuModel(), runtime.NumCPU())
	w("(%s, Go %s). The machine is shared: load average (1, 5, 15 min) %s before, %s after.",
		memTotal(), strings.TrimPrefix(runtime.Version(), "go"), before, loadAvg())
	w("")
	w("`%s` (`BenchmarkAdvertToRegistered`, internal/master/joinservice): N simulated machines appear at", strings.Join(registerCommand, " "))
	w("once. Each advert is handed to the registrar as the avahi browser hands it over after the resolve;")
	w("then each machine, from its own loopback address over TLS, sends its registration request (signed")
	w("with its host key), long-polls until its slot is issued, fetches its documents with its request")
	w("secret and reports joined; the master records each node (cluster files fsynced). The figure is the")
	w("wall time from the first advert to the last record `registered`: embedded store, mode `anything`")
	w("with an install window, the registrar running as `serve` runs it. mDNS itself (avahi's probing and")
	w("announcements, about a second for a new advert) is not in it; the QA scenarios run it.")
	w("Each figure is min / median / max of %d runs.", registerRuns)
	w("")
	w("| hosts | advert to registered, ms (min / median / max) |")
	w("|---:|---:|")
	for _, n := range hosts {
		w("| %d | %s |", n, minMedMax(ms[n], "%.0f"))
	}
	w(registerEnd)
	section := b.String()
	if out == "-" {
		fmt.Print(section)
		return nil
	}
	p := out
	if !filepath.IsAbs(p) {
		p = filepath.Join(root, p)
	}
	old, err := os.ReadFile(p)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	doc := string(old)
	if i, j := strings.Index(doc, registerBegin), strings.Index(doc, registerEnd); i >= 0 && j > i {
		doc = doc[:i] + section + strings.TrimPrefix(doc[j+len(registerEnd):], "\n")
	} else {
		if doc != "" && !strings.HasSuffix(doc, "\n\n") {
			doc = strings.TrimRight(doc, "\n") + "\n\n"
		}
		doc += section
	}
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		return err
	}
	fmt.Print(section)
	fmt.Fprintf(os.Stderr, "bench: wrote the auto-registration section of %s\n", p)
	return nil
}
