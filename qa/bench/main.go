// Bench is `make bench`: node-add against the pre-2.7 Ganeti way
// (clusterlab.LegacyScript: one scp per file) for 1, 10 and 50 nodes
// joined in parallel on namespace hosts with real sshd, counting the SSH
// connections in each node's sshd log and timing each run; then the
// node-side programs' time per run on a typical document. It writes the
// results and the machine into doc/benchmarks.md. Nothing asserts on time.
// It needs root.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/qa/clusterlab"
	"github.com/nodejoin/nodejoin/qa/harness"
)

// row is one size's comparison.
type row struct {
	nodes                int
	newConns, oldConns   int
	newWall, oldWall     time.Duration
	newFailed, oldFailed int
}

func main() {
	sizes := flag.String("nodes", "1,10,50", "comma-separated node counts")
	out := flag.String("o", "doc/benchmarks.md", "write the report to `FILE` (- for standard output)")
	pull := flag.Bool("pull", false, "run only the pull-mode benchmark (join-service, pull.go) and write its own section of -o")
	register := flag.Bool("register", false, "run only the auto-registration benchmark (register.go) and write its own section of -o")
	flag.Parse()
	if *register {
		if err := runRegister(*out); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if *pull {
		if err := runPull(*out); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			os.Exit(1)
		}
		return
	}
	r := harness.NewProgram("bench")

	start := time.Now()
	var rows []row
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 99 {
			r.Fatalf("-nodes: %q is not a count from 1 to 99", s)
		}
		rows = append(rows, compare(r, n))
	}
	ns := nodeSide(r)
	report := render(rows, ns, time.Since(start))
	if *out == "-" {
		fmt.Print(report)
		return
	}
	root, err := clusterlab.ModuleRoot()
	if err != nil {
		r.Fatalf("%v", err)
	}
	p := *out
	if !filepath.IsAbs(p) {
		p = filepath.Join(root, p)
	}
	if err := os.WriteFile(p, []byte(report), 0o644); err != nil {
		r.Fatalf("%v", err)
	}
	fmt.Print(report)
	fmt.Fprintf(os.Stderr, "bench: wrote %s\n", p)
}

// compare joins n nodes with node-add and n others the pre-2.7 way, in one
// lab of 2n nodes, each side all in parallel.
func compare(r *harness.Program, n int) row {
	fmt.Fprintf(os.Stderr, "bench: %d node(s): starting a lab of master + %d nodes\n", n, 2*n)
	l := clusterlab.New(r, harness.Options{Nodes: 2 * n, ShareRSAHostKey: true})
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
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
	newNodes, oldNodes := l.Nodes[:n], l.Nodes[n:]
	row := row{nodes: n}

	before := conns(newNodes)
	res := l.NodeAdd(ctx, append([]string{"--parallel", strconv.Itoa(n)}, clusterlab.Names(newNodes)...)...)
	row.newWall, row.newConns = res.Took, conns(newNodes)-before
	if !res.OK() {
		row.newFailed = n
		fmt.Fprintf(os.Stderr, "bench: node-add: %s\n", res)
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
	row.oldWall, row.oldConns = time.Since(t0), conns(oldNodes)-before
	fmt.Fprintf(os.Stderr, "bench: %d node(s): node-add %d connections in %v; pre-2.7 %d connections in %v\n",
		n, row.newConns, row.newWall.Round(time.Millisecond), row.oldConns, row.oldWall.Round(time.Millisecond))
	return row
}

func conns(nodes []*harness.Host) int {
	total := 0
	for _, n := range nodes {
		total += n.CountSSHConnections()
	}
	return total
}

// nodeSideResult is the time per run of one node-side program.
type nodeSideResult struct {
	name      string
	first, re testing.BenchmarkResult
}

// nodeSide times the installed node-side programs (bin/) on a typical
// document (internal/fixture: a full Ganeti-style document) under --root
// temporary directories: a first run on a fresh node, and a rerun that
// changes nothing. Each run is a whole process, as over SSH.
func nodeSide(r *harness.Program) []nodeSideResult {
	bin, err := clusterlab.Build()
	if err != nil {
		r.Fatalf("%v", err)
	}
	c, err := fixture.NewCluster("cluster.nodejoin.test")
	if err != nil {
		r.Fatalf("%v", err)
	}
	progs := []struct {
		name string
		doc  []byte
	}{
		{"prepare-node-join", fixture.JSON(c.Prepare())},
		{"node-daemon-setup", fixture.JSON(c.DaemonSetup("node1.cluster.nodejoin.test"))},
	}
	var res []nodeSideResult
	for _, p := range progs {
		exe := filepath.Join(bin, p.name)
		once := func(b *testing.B, root string) {
			cmd := exec.Command(exe, "--root", root)
			cmd.Stdin = bytes.NewReader(p.doc)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%s: %v\n%s", p.name, err, out)
			}
		}
		first := testing.Benchmark(func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				root := fixture.NewRoot(b)
				b.StartTimer()
				once(b, root)
			}
		})
		re := testing.Benchmark(func(b *testing.B) {
			root := fixture.NewRoot(b)
			once(b, root)
			for b.Loop() {
				once(b, root)
			}
		})
		fmt.Fprintf(os.Stderr, "bench: %s: first run %v, rerun %v\n", p.name, time.Duration(first.NsPerOp()), time.Duration(re.NsPerOp()))
		res = append(res, nodeSideResult{p.name, first, re})
	}
	return res
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
	w("| nodes | node-add SSH connections | pre-2.7 SSH connections | ratio | node-add wall time | pre-2.7 wall time | ratio |")
	w("|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		note := ""
		if r.newFailed > 0 || r.oldFailed > 0 {
			note = fmt.Sprintf(" (failed: node-add %d, pre-2.7 %d)", r.newFailed, r.oldFailed)
		}
		w("| %d%s | %d | %d | %s | %v | %v | %s |", r.nodes, note, r.newConns, r.oldConns, ratio(float64(r.oldConns), float64(r.newConns)),
			r.newWall.Round(time.Millisecond), r.oldWall.Round(time.Millisecond), ratio(r.oldWall.Seconds(), r.newWall.Seconds()))
	}
	w("")
	w("Ratios are pre-2.7 divided by node-add. Both sides start the same node daemon (`noded`) and")
	w("wait for it over mutual TLS; node-add also checks every document before writing, writes in one")
	w("transaction and records the node on the master, which the baseline does not do.")
	w("")
	w("## Node-side programs: time per run")
	w("")
	w("`bin/<program> --root DIR < document` as a whole process, on the typical document of")
	w("internal/fixture (a cluster certificate, rsa and ed25519 host keys, ten ssconf keys), with")
	w("`/bin/true` as the sshd check and restart commands, measured with testing.Benchmark: a first run")
	w("on a fresh root (everything written) and a rerun with the same document (nothing changes).")
	w("")
	w("| program | first run | rerun (no change) | runs measured |")
	w("|---|---:|---:|---:|")
	for _, r := range ns {
		w("| %s | %v | %v | %d / %d |", r.name, time.Duration(r.first.NsPerOp()).Round(10*time.Microsecond),
			time.Duration(r.re.NsPerOp()).Round(10*time.Microsecond), r.first.N, r.re.N)
	}
	w("")
	w("Commands: `make bench` (= `./tools/install-deps.sh; ./build.sh; go run ./qa/bench`), as root;")
	w("`go run ./qa/bench -nodes 1,10 -o -` for a quicker look on standard output.")
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
