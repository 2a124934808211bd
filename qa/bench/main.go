// Bench is `make bench`: node-add against the pre-2.7 Ganeti way
// (clusterlab.LegacyScript: one scp per file) for 1, 10, 50 and 100 nodes
// joined in parallel on namespace hosts with real sshd, counting the SSH
// connections in each node's sshd log and timing each run (the small sizes
// several times, each in a lab of its own), with node-add's CPU time, peak
// memory and the time of each step of a join; then the node-side programs'
// time, CPU, memory and fsyncs per run on a typical document, and against
// Ganeti 3.0's own tools (nodeside.go). It writes the results and the
// machine into doc/benchmarks.md. Nothing asserts on time. It needs root.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nodejoin/nodejoin/qa/clusterlab"
	"github.com/nodejoin/nodejoin/qa/harness"
)

// row is one size's comparison, over its runs.
type row struct {
	nodes                int
	newConns, oldConns   int
	newWall, oldWall     []time.Duration // one per run
	newFailed, oldFailed int
	// Of node-add's runs: its CPU time (with the ssh processes it runs),
	// its peak RSS, the load average before each run, and every join's
	// step times and ssconf pushes.
	newCPU  []time.Duration
	peakRSS int // KiB
	load    []string
	steps   []map[string]float64 // one per join, "seconds" the whole join
	pushes  []float64            // seconds of each ssconf push
	classic *classicRun          // the first run's variant, if it ran
	// busy is the whole machine's CPU time during each node-add run: the
	// master's side and the nodes' (their sshd, programs and node
	// daemons run on the same cores), and whatever else ran.
	busy []time.Duration
}

func main() {
	sizes := flag.String("nodes", "1,10,50,100", "comma-separated node counts")
	runs := flag.Int("runs", 5, "runs of each size of at most 10 nodes (larger sizes run once)")
	ganeti := flag.Bool("ganeti", true, "also time Ganeti's own node tools on the same documents (needs Debian's ganeti)")
	out := flag.String("o", "doc/benchmarks.md", "write the report to `FILE` (- for standard output)")
	pull := flag.Bool("pull", false, "run only the pull-mode benchmark (join-service, pull.go) and write its own section of -o")
	register := flag.Bool("register", false, "run only the auto-registration benchmark (register.go) and write its own section of -o")
	flag.Parse()
	if *register {
		if err := registerSection.run(*out); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if *pull {
		if err := pullSection.run(*out); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			os.Exit(1)
		}
		return
	}
	r := harness.NewProgram("bench")

	start := time.Now()
	var sizeList []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 100 {
			r.Fatalf("-nodes: %q is not a count from 1 to 100", s)
		}
		sizeList = append(sizeList, n)
	}
	// The node side first, then the sizes from the smallest; the report is
	// written again after each, so that a lab that cannot be set up (a
	// large one on a loaded machine) leaves the figures of the others.
	ns := nodeSide(r, *ganeti)
	var rows []row
	write := func(final bool) {
		report := render(rows, ns, time.Since(start))
		if *out == "-" {
			if final {
				fmt.Print(report)
			}
			return
		}
		p := writeReport(r, *out, report)
		if final {
			fmt.Print(report)
			fmt.Fprintf(os.Stderr, "bench: wrote %s\n", p)
		}
	}
	for _, n := range sizeList {
		k := 1
		if n <= 10 {
			k = max(*runs, 1)
		}
		rows = append(rows, compare(r, n, k))
		write(false)
	}
	write(true)
}

// writeReport writes report to out (relative to the module root), keeping
// the sections that runs of their own write (section.go: -pull, -register).
func writeReport(r *harness.Program, out, report string) string {
	root, err := clusterlab.ModuleRoot()
	if err != nil {
		r.Fatalf("%v", err)
	}
	p := out
	if !filepath.IsAbs(p) {
		p = filepath.Join(root, p)
	}
	if old, err := os.ReadFile(p); err == nil {
		doc := string(old)
		for _, s := range sections {
			if text := s.in(doc); text != "" {
				report = s.splice(report, text)
			}
		}
	}
	if err := os.WriteFile(p, []byte(report), 0o644); err != nil {
		r.Fatalf("%v", err)
	}
	return p
}

// compare runs compareOnce k times, each in a lab of its own (so that no
// run pushes ssconf to the nodes of an earlier one), and gathers the runs.
func compare(r *harness.Program, n, k int) row {
	out := row{nodes: n}
	for run := range k {
		one := compareOnce(r, n, run+1, k)
		out.newConns, out.oldConns = max(out.newConns, one.newConns), max(out.oldConns, one.oldConns)
		out.newWall = append(out.newWall, one.newWall...)
		out.oldWall = append(out.oldWall, one.oldWall...)
		out.newFailed += one.newFailed
		out.oldFailed += one.oldFailed
		out.newCPU = append(out.newCPU, one.newCPU...)
		out.peakRSS = max(out.peakRSS, one.peakRSS)
		out.load = append(out.load, one.load...)
		out.steps = append(out.steps, one.steps...)
		out.pushes = append(out.pushes, one.pushes...)
		out.busy = append(out.busy, one.busy...)
		if one.classic != nil {
			out.classic = one.classic
		}
	}
	return out
}

// compareOnce joins n nodes with node-add and n others the pre-2.7 way, in
// one lab of 2n nodes, each side all in parallel.
func compareOnce(r *harness.Program, n, run, runs int) row {
	// The first run of a size that fits joins a third group with the
	// classic key exchange (classicKex): in labs of at most 150 hosts (the
	// 50-node size; since the lab boots at most four hosts per core at a
	// time, 200 hosts are set up on this machine too, but 300 would double
	// the 100-node size's set-up for a figure the 50-node size gives).
	groups := 2
	if run == 1 && n >= 10 && 3*n <= 150 {
		groups = 3
	}
	fmt.Fprintf(os.Stderr, "bench: %d node(s), run %d of %d: starting a lab of master + %d nodes\n", n, run, runs, groups*n)
	l := clusterlab.New(r, harness.Options{Nodes: groups * n, ShareRSAHostKey: true})
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if res := l.Init(ctx); !res.OK() {
		r.Fatalf("cluster-init: %s", res)
	}
	if err := l.TrustHostKeys(l.Nodes...); err != nil {
		r.Fatalf("%v", err)
	}
	if err := l.InstallLegacy(); err != nil {
		r.Fatalf("%v", err)
	}
	newNodes, oldNodes := l.Nodes[:n], l.Nodes[n:2*n]
	row := row{nodes: n}

	before := conns(newNodes)
	row.load = append(row.load, loadAvg())
	busy := machineBusy()
	res := nodeAdd(ctx, l, newNodes)
	row.busy = []time.Duration{machineBusy() - busy}
	row.newWall, row.newConns = []time.Duration{res.Took}, conns(newNodes)-before
	if !res.OK() {
		row.newFailed = n
		fmt.Fprintf(os.Stderr, "bench: node-add: %s\n", res)
	}
	if cpu, rss, ok := parseTime(res.Stderr); ok {
		row.newCPU, row.peakRSS = []time.Duration{cpu}, rss
	}
	row.steps, row.pushes = parseJoins(res.Stdout)

	if groups == 3 {
		// The operator's ssh_config, which node-add's ssh reads, asks
		// for curve25519-sha256 instead of OpenSSH 9.2's default
		// sntrup761x25519-sha512 (post-quantum hybrid, and the larger
		// part of each connection's CPU on both ends).
		cfg := l.Master.Path("/root/.ssh/config")
		if err := os.WriteFile(cfg, []byte("KexAlgorithms "+classicKex+"\n"), 0o600); err != nil {
			r.Fatalf("%v", err)
		}
		load := loadAvg()
		busy := machineBusy()
		cr := nodeAdd(ctx, l, l.Nodes[2*n:])
		busy = machineBusy() - busy
		_ = os.Remove(cfg)
		if !cr.OK() {
			fmt.Fprintf(os.Stderr, "bench: node-add with %s: %s\n", classicKex, cr)
		}
		row.classic = &classicRun{wall: cr.Took, busy: busy, load: load}
		row.classic.cpu, _, _ = parseTime(cr.Stderr)
		fmt.Fprintf(os.Stderr, "bench: %d node(s): node-add with KexAlgorithms %s in %v (load %s)\n", n, classicKex, cr.Took.Round(time.Millisecond), load)
	}

	before = conns(oldNodes)
	var wg sync.WaitGroup
	var mu sync.Mutex
	t0 := time.Now()
	for _, node := range oldNodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res := l.LegacyJoin(ctx, node); !res.OK() {
				mu.Lock()
				row.oldFailed++
				mu.Unlock()
				fmt.Fprintf(os.Stderr, "bench: legacy join of %s: %s\n", node.Name, res)
			}
		}()
	}
	wg.Wait()
	row.oldWall, row.oldConns = []time.Duration{time.Since(t0)}, conns(oldNodes)-before
	fmt.Fprintf(os.Stderr, "bench: %d node(s): node-add %d connections in %v (load %s); pre-2.7 %d connections in %v\n",
		n, row.newConns, res.Took.Round(time.Millisecond), row.load[0], row.oldConns, row.oldWall[0].Round(time.Millisecond))
	return row
}

const timeFormat = "bench-time %e %U %S %M"

// classicKex is the key exchange of the variant run (see compareOnce).
const classicKex = "curve25519-sha256"

// classicRun is node-add's run with classicKex.
type classicRun struct {
	wall, cpu time.Duration
	busy      time.Duration // the machine's CPU during the run
	load      string
}

// nodeAdd joins nodes with node-add on the lab's master under GNU time,
// whose line comes last on standard error: node-add's CPU time with that
// of the ssh processes it waited for, and its peak RSS.
func nodeAdd(ctx context.Context, l *clusterlab.Lab, nodes []*harness.Host) clusterlab.Result {
	return clusterlab.Run(ctx, l.Master, nil, append([]string{"/usr/bin/time", "-f", timeFormat, "node-add", "--output", "json",
		"--parallel", strconv.Itoa(len(nodes))}, clusterlab.Names(nodes)...)...)
}

// machineBusy is the CPU time all processes of the machine have used
// since boot: /proc/stat's first line, every field but idle and iowait
// (in USER_HZ, 100 per second on Linux).
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	var ticks int64
	for i, f := range strings.Fields(line)[1:] {
		if v, err := strconv.ParseInt(f, 10, 64); err == nil && i != 3 && i != 4 && i < 8 {
			ticks += v // user nice system (idle iowait) irq softirq steal
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// parseTime reads GNU time's line: CPU (user + system) and peak RSS (KiB).
func parseTime(stderr string) (time.Duration, int, bool) {
	for _, l := range strings.Split(stderr, "\n") {
		f := strings.Fields(l)
		if len(f) != 5 || f[0] != "bench-time" {
			continue
		}
		u, err1 := strconv.ParseFloat(f[2], 64)
		s, err2 := strconv.ParseFloat(f[3], 64)
		rss, err3 := strconv.Atoi(f[4])
		if err1 == nil && err2 == nil && err3 == nil {
			return time.Duration((u + s) * float64(time.Second)), rss, true
		}
	}
	return 0, 0, false
}

// parseJoins reads node-add's --output json: each join's step times (its
// whole time as "seconds") and each ssconf push's time.
func parseJoins(stdout string) (steps []map[string]float64, pushes []float64) {
	for _, l := range strings.Split(stdout, "\n") {
		var v struct {
			Seconds     *float64           `json:"seconds"`
			StepSeconds map[string]float64 `json:"step_seconds"`
			Push        *struct {
				Seconds float64 `json:"seconds"`
			} `json:"ssconf_push"`
		}
		if json.Unmarshal([]byte(l), &v) != nil {
			continue
		}
		switch {
		case v.Push != nil:
			pushes = append(pushes, v.Push.Seconds)
		case v.Seconds != nil && v.StepSeconds != nil:
			m := maps.Clone(v.StepSeconds)
			m["seconds"] = *v.Seconds
			steps = append(steps, m)
		}
	}
	return steps, pushes
}

func conns(nodes []*harness.Host) int {
	total := 0
	for _, n := range nodes {
		total += n.CountSSHConnections()
	}
	return total
}

func render(rows []row, ns []nodeSideResult, took time.Duration) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# Benchmarks")
	w("")
	w("Written by `make bench` (qa/bench) on %s; the whole run took %v. Not timed tests: nothing", time.Now().UTC().Format("2006-01-02 15:04 UTC"), took.Round(time.Second))
	w("asserts on these figures. Run it again to refresh this file.")
	w("")
	w("## Machine")
	w("")
	w("| | |")
	w("|---|---|")
	w("| CPU | %s |", cpuModel())
	w("| cores | %d |", runtime.NumCPU())
	w("| memory | %s |", memTotal())
	w("| kernel | %s |", strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")))
	w("| OpenSSH | %s |", sshVersion())
	w("| Go | %s |", runtime.Version())
	w("| programs | %s |", programVersion())
	w("")
	w("## Joining nodes: node-add against the pre-2.7 Ganeti way")
	w("")
	w("Each size runs in its own lab (qa/harness: namespace hosts on one bridge, each with Debian's")
	w("sshd, LogLevel VERBOSE) of a master and twice that many nodes: node-add joins the first half")
	w("(`node-add --parallel N node1 ... nodeN`, host keys from the master's known_hosts), then the")
	w("baseline joins the second half, all nodes at once. The baseline (`clusterlab.LegacyScript`) is")
	w("what design-node-add.rst calls the current state before 2.7: from the master, one `scp -p` per")
	w("file with StrictHostKeyChecking=yes against the node's own host key (the cluster host keys and")
	w("root's key pair), one ssh to restart sshd, then, checked against the cluster host key by its")
	w("alias, one `scp -p` per ssconf file, hmac.key, server.pem and known_hosts, one ssh to start the")
	w("node daemon, and a wait until it answers over TLS (as Ganeti's _WaitForNodeDaemon). Connections")
	w("are the `Connection from` lines the nodes' sshd logged; wall time is from the master's side.")
	w("")
	w("| nodes | runs | node-add SSH connections | pre-2.7 SSH connections | ratio | node-add wall time min / median / max | pre-2.7 wall time min / median / max | ratio of medians | node-add CPU (with its ssh) | load before each run |")
	w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range rows {
		note := ""
		if r.newFailed > 0 || r.oldFailed > 0 {
			note = fmt.Sprintf(" (failed: node-add %d, pre-2.7 %d)", r.newFailed, r.oldFailed)
		}
		w("| %d%s | %d | %d | %d | %s | %s | %s | %s | %s | %s |", r.nodes, note, len(r.newWall), r.newConns, r.oldConns,
			ratio(float64(r.oldConns), float64(r.newConns)), spread(r.newWall), spread(r.oldWall),
			ratio(median(r.oldWall).Seconds(), median(r.newWall).Seconds()), spread(r.newCPU), strings.Join(r.load, "; "))
	}
	w("")
	w("Ratios are pre-2.7 divided by node-add. Both sides start the same node daemon (`noded`) and")
	w("wait for it over mutual TLS; node-add also checks every document before writing, writes in one")
	w("transaction and records the node on the master, which the baseline does not do. The CPU")
	w("column is GNU time's user + system time of node-add and the ssh processes it runs (the master's")
	w("side only; the nodes' sshd and programs run in the nodes' namespaces on the same two cores).")
	w("")
	w("Where the time of a join goes, found with profiles and counts, and what was changed for it:")
	w("doc/performance.md.")
	w("")
	renderScaling(w, rows)
	renderSteps(w, rows)
	renderNodeSide(w, ns)
	w("")
	w("Commands: `make bench` (= `./tools/install-deps.sh; ./build.sh; go run ./qa/bench`), as root;")
	w("`go run ./qa/bench -nodes 1,10 -runs 1 -ganeti=false -o -` for a quicker look on standard output")
	w("(-runs: runs of each size up to 10 nodes; -ganeti: time Ganeti's own node tools too).")
	return b.String()
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f×", a/b)
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func cpuModel() string {
	for _, line := range strings.Split(readFile("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func memTotal() string {
	for _, line := range strings.Split(readFile("/proc/meminfo"), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.Atoi(f[1])
			return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return "unknown"
}

// programVersion is what the installed node-add says it is.
func programVersion() string {
	bin, err := clusterlab.Build()
	if err != nil {
		return "unknown"
	}
	out, _ := exec.Command(filepath.Join(bin, "node-add"), "--version").CombinedOutput()
	return strings.TrimSpace(string(out))
}

func sshVersion() string {
	out, _ := exec.Command("ssh", "-V").CombinedOutput()
	return strings.TrimSpace(string(out))
}
