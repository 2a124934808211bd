package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// registerRuns is how many times each size runs.
const registerRuns = 5

var registerCommand = []string{"go", "test", "-run", "^$", "-bench", "^BenchmarkAdvertToRegistered$", "-benchtime", "1x",
	"-count", strconv.Itoa(registerRuns), "./internal/master/joinservice/"}

// registerSection is the registrar's benchmark.
var registerSection = &section{
	name:    "auto-registration",
	begin:   "<!-- auto-registration: written by go run ./qa/bench -register -->",
	end:     "<!-- end of auto-registration -->",
	command: registerCommand,
	render:  renderRegister,
}

var registerLine = regexp.MustCompile(`^BenchmarkAdvertToRegistered/hosts=(\d+)(?:-\d+)?\s+\d+\s+([0-9.]+) ms/batch`)

func renderRegister(stdout, loadBefore string, took time.Duration) (string, error) {
	var hosts []int
	ms := map[int][]float64{}
	for _, l := range strings.Split(stdout, "\n") {
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
		return "", fmt.Errorf("no BenchmarkAdvertToRegistered lines in the output")
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("## Auto-registration: advert to registered")
	w("")
	b.WriteString(written("-register", took, loadBefore, ""))
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
	return b.String(), nil
}
