package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/ssconf"
	"github.com/nodejoin/nodejoin/internal/sshkeys"
	"github.com/nodejoin/nodejoin/qa/clusterlab"
	"github.com/nodejoin/nodejoin/qa/harness"
)

// sample is one whole run of a node-side program.
type sample struct {
	wall, cpu time.Duration // cpu: user + system (rusage)
}

// nodeSideResult is what one node-side program did per run.
type nodeSideResult struct {
	name      string
	first, re []sample
	// counts of system calls (strace -c) of one first run and one rerun
	firstCalls, reCalls map[string]int
	// peak RSS (KiB) on the typical document and on the largest document
	// the schemas and the input limit allow, and that document's size
	typicalRSS, largestRSS, largestBytes int
	// Ganeti's tool and ours, each on a private copy of a lab host's
	// trees, on the same document (ganetiDocs); nil when not measured
	ganetiFirst, ganetiRe, oursFirst, oursRe []time.Duration
}

// nodeSide times the installed node-side programs (bin/) on a typical
// document (internal/fixture: a full Ganeti-style document) under --root
// temporary directories: a first run on a fresh node, and a rerun that
// changes nothing. Each run is a whole process, as over SSH.
func nodeSide(r *harness.Program, ganeti bool) []nodeSideResult {
	bin, err := clusterlab.Build()
	if err != nil {
		r.Fatalf("%v", err)
	}
	c, err := fixture.NewCluster("cluster.nodejoin.test")
	if err != nil {
		r.Fatalf("%v", err)
	}
	largePrep, largeSetup, err := largestDocuments(c)
	if err != nil {
		r.Fatalf("%v", err)
	}
	progs := []struct {
		name       string
		doc, large []byte
	}{
		{"prepare-node-join", fixture.JSON(c.Prepare()), largePrep},
		{"node-daemon-setup", fixture.JSON(c.DaemonSetup("node1.cluster.nodejoin.test")), largeSetup},
	}
	var res []nodeSideResult
	for _, p := range progs {
		exe := filepath.Join(bin, p.name)
		once := func(b *testing.B, root string, doc []byte) sample {
			cmd := exec.Command(exe, "--root", root)
			cmd.Stdin = bytes.NewReader(doc)
			t := time.Now()
			out, err := cmd.CombinedOutput()
			wall := time.Since(t)
			if err != nil {
				r.Fatalf("%s (%d-byte document): %v\n%s", p.name, len(doc), err, out)
			}
			return usage(cmd.ProcessState, wall)
		}
		// testing.Benchmark calls the function with a growing b.N: the
		// samples are those of its last call.
		var first, re []sample
		testing.Benchmark(func(b *testing.B) {
			first = first[:0]
			for b.Loop() {
				b.StopTimer()
				root := fixture.NewRoot(b)
				b.StartTimer()
				first = append(first, once(b, root, p.doc))
			}
		})
		testing.Benchmark(func(b *testing.B) {
			re = re[:0]
			root := fixture.NewRoot(b)
			once(b, root, p.doc)
			for b.Loop() {
				re = append(re, once(b, root, p.doc))
			}
		})
		nr := nodeSideResult{name: p.name, first: first, re: re, largestBytes: len(p.large)}
		// Once, in a benchmark for its temporary roots.
		testing.Benchmark(func(b *testing.B) {
			if nr.firstCalls == nil {
				root := fixture.NewRoot(b)
				nr.firstCalls = syscalls(b, exe, root, p.doc)
				nr.reCalls = syscalls(b, exe, root, p.doc)
				nr.typicalRSS = peakRSS(r, exe, fixture.NewRoot(b), p.doc)
				nr.largestRSS = peakRSS(r, exe, fixture.NewRoot(b), p.large)
			}
			for b.Loop() {
			}
		})
		fmt.Fprintf(os.Stderr, "bench: %s: first run %s, rerun %s (wall, min / median / max)\n", p.name, spread(walls(first)), spread(walls(re)))
		res = append(res, nr)
	}
	if ganeti {
		compareGanetiTools(r, res)
	}
	return res
}

func usage(ps *os.ProcessState, wall time.Duration) sample {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return sample{wall: wall}
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return sample{wall: wall, cpu: cpu}
}

// peakRSS is exe's peak RSS (KiB) on a fresh root, as GNU time reports it.
// The rusage of a child of this process would not do: Linux carries the
// peak of the forked copy of the (large) bench process across the exec.
func peakRSS(r *harness.Program, exe, root string, doc []byte) int {
	cmd := exec.Command("/usr/bin/time", "-f", "bench-rss %M", exe, "--root", root)
	cmd.Stdin = bytes.NewReader(doc)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		r.Fatalf("%s (%d-byte document): %v\n%s", exe, len(doc), err, stderr.String())
	}
	for _, l := range strings.Split(stderr.String(), "\n") {
		if v, ok := strings.CutPrefix(l, "bench-rss "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

func walls(ss []sample) []time.Duration {
	out := make([]time.Duration, len(ss))
	for i, s := range ss {
		out[i] = s.wall
	}
	return out
}

func cpus(ss []sample) []time.Duration {
	out := make([]time.Duration, len(ss))
	for i, s := range ss {
		out[i] = s.cpu
	}
	return out
}

// countedCalls are the system calls syscalls counts: those that wait for
// the disk, make files or start programs.
var countedCalls = []string{"fsync", "fdatasync", "renameat", "openat", "execve"}

// syscalls runs exe once under strace -f -c and returns its counts; nil
// where strace is missing.
func syscalls(b *testing.B, exe, root string, doc []byte) map[string]int {
	if _, err := exec.LookPath("strace"); err != nil {
		return nil
	}
	out := filepath.Join(b.TempDir(), "strace")
	cmd := exec.Command("strace", "-f", "-qq", "-c", "-o", out, "-e", "trace="+strings.Join(countedCalls, ","), exe, "--root", root)
	cmd.Stdin = bytes.NewReader(doc)
	if o, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: strace %s: %v\n%s", exe, err, o)
		return nil
	}
	counts := map[string]int{}
	// "% time seconds usecs/call calls [errors] syscall"
	for _, l := range strings.Split(readFile(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		if n, err := strconv.Atoi(f[3]); err == nil {
			counts[f[len(f)-1]] = n
		}
	}
	return counts
}

// largestDocuments are a prepare-node-join and a node-daemon-setup
// document as large as the input limit (1 MiB) and the schemas allow: 1,300
// RSA 4096 key lines to authorize, and every ssconf value a hypervisor's
// parameters may have filled to the 128 KiB ssconf rule.
func largestDocuments(c *fixture.Cluster) (prep, setup []byte, err error) {
	_, pub, err := sshkeys.Generate(sshkeys.RSA, 4096, "bench@"+c.Name)
	if err != nil {
		return nil, nil, err
	}
	p := c.Prepare()
	for i := 0; i < 1300; i++ {
		p.AuthorizedKeys[fmt.Sprintf("node-%d", i)] = []string{strings.TrimSpace(string(pub))}
	}
	d := c.DaemonSetup("node1.cluster.nodejoin.test")
	value := strings.Repeat("parameter=value\n", (ssconf.MaxSize-16)/16)
	for _, hv := range []string{"kvm", "xen-pvm", "xen-hvm", "chroot", "lxc", "fake"} {
		d.Ssconf["hvparams_"+hv] = value
	}
	// The cluster tags take what is left of the 1 MiB (one long tag: a
	// newline would take two bytes of JSON).
	room := 1<<20 - len(fixture.JSON(d)) - 64
	d.Ssconf["cluster_tags"] = strings.Repeat("t", min(max(room, 0), ssconf.MaxSize-1))
	return fixture.JSON(p), fixture.JSON(d), nil
}

// ganetiDocuments are the typical documents as a Ganeti 3.0 master sends
// them: its tools know rsa, dsa and ecdsa keys (not ed25519) and want an
// RSA cluster certificate of at least 2048 bits.
func ganetiDocuments(c *fixture.Cluster) (prep, setup []byte, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	// As certs.NewClusterCertificate makes it, with an RSA key.
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: c.Name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	p := c.Prepare()
	p.NodeDaemonCertificate = string(certPEM)
	p.SSHKeyType, p.SSHKeyBits = "rsa", 2048
	var rsaOnly []joindoc.KeyTriple
	for _, k := range p.SSHHostKey {
		if k.Kind == string(sshkeys.RSA) {
			rsaOnly = append(rsaOnly, k)
		}
	}
	p.SSHHostKey = rsaOnly
	d := c.DaemonSetup("node1.cluster.nodejoin.test")
	d.NodeDaemonCertificate = string(keyPEM) + string(certPEM)
	return fixture.JSON(p), fixture.JSON(d), nil
}

// ganetiRuns is how many times each tool runs in the comparison.
const ganetiRuns = 5

// compareGanetiTools runs Ganeti 3.0's prepare-node-join and
// node-daemon-setup (Debian's ganeti package) and ours on the same
// documents, each on a private copy of a lab host's trees with its service
// commands stubbed (clusterlab.RunPrivate, as the Ganeti scenario compares
// their files), ganetiRuns first runs on fresh copies and as many reruns.
func compareGanetiTools(r *harness.Program, res []nodeSideResult) {
	if missing := clusterlab.GanetiMissing(); missing != "" {
		fmt.Fprintf(os.Stderr, "bench: not timing Ganeti's tools: %s\n", missing)
		return
	}
	c, err := fixture.NewCluster(clusterlab.ClusterName)
	if err != nil {
		r.Fatalf("%v", err)
	}
	prep, setup, err := ganetiDocuments(c)
	if err != nil {
		r.Fatalf("%v", err)
	}
	docs := map[string][]byte{"prepare-node-join": prep, "node-daemon-setup": setup}
	fmt.Fprintf(os.Stderr, "bench: timing Ganeti's node tools against ours on a lab host\n")
	l := clusterlab.New(r, harness.Options{Nodes: 1, Ganeti: true})
	defer l.Close()
	node := l.Nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	conf := fmt.Sprintf(`{"sshd_check_command": ["nj-check-sshd"], "sshd_restart_command": [%q]}`+"\n", clusterlab.RestartStub)
	if err := os.WriteFile(node.Path("/etc/nodejoin/node.json"), []byte(conf), 0o644); err != nil {
		r.Fatalf("%v", err)
	}
	for i := range res {
		tool := res[i].name
		for _, side := range []string{"ganeti", "nodejoin"} {
			prog := "/usr/lib/ganeti/" + tool
			if side == "nodejoin" {
				prog = "/usr/local/sbin/" + tool
			}
			var first, re []time.Duration
			for k := range ganetiRuns {
				name := fmt.Sprintf("%s-%s-%d", side, tool, k)
				if err := clusterlab.PreparePrivateTree(ctx, node, name); err != nil {
					r.Fatalf("%v", err)
				}
				if tool == "node-daemon-setup" {
					// As in a join: prepare-node-join has run first.
					if pr := clusterlab.RunPrivate(ctx, node, name, docs["prepare-node-join"], strings.Replace(prog, tool, "prepare-node-join", 1)); !pr.Result.OK() {
						r.Fatalf("%s's prepare-node-join: exit %d\n%s", side, pr.Result.Code, clusterlab.Redact(pr.Result.Stderr, prep))
					}
				}
				for j, out := range []*[]time.Duration{&first, &re} {
					pr := clusterlab.RunPrivate(ctx, node, name, docs[tool], prog)
					if !pr.Result.OK() {
						r.Fatalf("%s's %s (run %d): exit %d\n%s", side, tool, j+1, pr.Result.Code, clusterlab.Redact(pr.Result.Stderr, docs[tool]))
					}
					*out = append(*out, pr.Result.Took)
				}
			}
			if side == "ganeti" {
				res[i].ganetiFirst, res[i].ganetiRe = first, re
			} else {
				res[i].oursFirst, res[i].oursRe = first, re
			}
			fmt.Fprintf(os.Stderr, "bench: %s's %s: first run %s, rerun %s\n", side, tool, spread(first), spread(re))
		}
	}
}

func renderNodeSide(w func(string, ...any), ns []nodeSideResult) {
	w("## Node-side programs: time per run")
	w("")
	w("`bin/<program> --root DIR < document` as a whole process, on the typical document of")
	w("internal/fixture (a cluster certificate, rsa and ed25519 host keys, ten ssconf keys), with")
	w("`/bin/true` as the sshd check and restart commands: a first run on a fresh root (everything")
	w("written) and a rerun with the same document (nothing changes). Wall and CPU (user + system,")
	w("from the process's rusage) are min / median / max of the runs testing.Benchmark made.")
	w("")
	w("| program | first run: wall | first run: CPU | rerun: wall | rerun: CPU | runs first / rerun | peak RSS, first run: typical / largest document |")
	w("|---|---:|---:|---:|---:|---:|---:|")
	for _, r := range ns {
		w("| %s | %s | %s | %s | %s | %d / %d | %.1f MiB / %.1f MiB (%d KiB document) |", r.name,
			spread(walls(r.first)), spread(cpus(r.first)), spread(walls(r.re)), spread(cpus(r.re)),
			len(r.first), len(r.re), float64(r.typicalRSS)/1024, float64(r.largestRSS)/1024, r.largestBytes>>10)
	}
	w("")
	w("The largest document is the biggest the input limit (1 MiB) and the schemas allow:")
	w("prepare-node-join with 1,300 RSA 4096 keys to authorize, node-daemon-setup with every")
	w("hypervisor's parameters and the cluster tags filled to the 128 KiB ssconf rule.")
	w("")
	if ns[0].firstCalls != nil {
		w("System calls of one run (`strace -f -c`; the same on any load):")
		w("")
		h, rule := "| program, run |", "|---|"
		for _, c := range countedCalls {
			h += " " + c + " |"
			rule += "---:|"
		}
		w("%s", h)
		w("%s", rule)
		for _, r := range ns {
			for _, run := range []struct {
				name   string
				counts map[string]int
			}{{"first run", r.firstCalls}, {"rerun", r.reCalls}} {
				l := "| " + r.name + ", " + run.name + " |"
				for _, c := range countedCalls {
					l += fmt.Sprintf(" %d |", run.counts[c])
				}
				w("%s", l)
			}
		}
		w("")
	}
	if ns[0].ganetiFirst == nil {
		return
	}
	w("### Against Ganeti 3.0's own node tools")
	w("")
	w("Debian's ganeti 3.0 tools (`/usr/lib/ganeti/prepare-node-join`, `node-daemon-setup`) and ours")
	w("on the same documents, in the same run: the typical documents as a Ganeti 3.0 master sends")
	w("them (rsa host key and root key type, an RSA 2048 cluster certificate: Ganeti 3.0 knows no")
	w("ed25519). Each run is on a private copy of a lab host's trees with its service commands")
	w("stubbed (clusterlab.RunPrivate: unshare, bind mounts, then the tool), so both sides pay the")
	w("same few milliseconds of set-up; node-daemon-setup runs after prepare-node-join, as in a join.")
	w("%d first runs (fresh copies) and %d reruns each, min / median / max.", ganetiRuns, ganetiRuns)
	w("")
	w("| tool | Ganeti first run | ours first run | ratio | Ganeti rerun | ours rerun | ratio |")
	w("|---|---:|---:|---:|---:|---:|---:|")
	for _, r := range ns {
		w("| %s | %s | %s | %s | %s | %s | %s |", r.name, spread(r.ganetiFirst), spread(r.oursFirst),
			ratio(median(r.ganetiFirst).Seconds(), median(r.oursFirst).Seconds()), spread(r.ganetiRe), spread(r.oursRe),
			ratio(median(r.ganetiRe).Seconds(), median(r.oursRe).Seconds()))
	}
	w("")
}
