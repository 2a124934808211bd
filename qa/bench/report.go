package main

import (
	"fmt"
	"runtime"
	"slices"
	"time"
)

// median is the middle of ds (the lower middle of an even count).
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// spread is "min / median / max", or the one value of a single run.
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 1 {
		return round(s[0])
	}
	return round(s[0]) + " / " + round(median(s)) + " / " + round(s[len(s)-1])
}

func round(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Microsecond).String()
}

func seconds(fs []float64) []time.Duration {
	out := make([]time.Duration, len(fs))
	for i, f := range fs {
		out[i] = time.Duration(f * float64(time.Second))
	}
	return out
}

// renderScaling is how node-add's wall time grows with the number of
// nodes: the goal is linear at worst.
func renderScaling(w func(string, ...any), rows []row) {
	var ten time.Duration
	for _, r := range rows {
		if r.nodes == 10 {
			ten = median(r.newWall)
		}
	}
	w("### node-add: scaling")
	w("")
	w("| nodes | median wall time | per node | time(n) / time(10) | machine CPU during the run (median) | that CPU / %d cores | node-add peak RSS |", runtime.NumCPU())
	w("|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		m := median(r.newWall)
		vs := "-"
		if ten > 0 {
			vs = fmt.Sprintf("%.2f", m.Seconds()/ten.Seconds())
		}
		b := median(r.busy)
		w("| %d | %s | %s | %s | %s | %s | %.1f MiB |", r.nodes, round(m), round(m/time.Duration(r.nodes)), vs,
			round(b), round(b/time.Duration(runtime.NumCPU())), float64(r.peakRSS)/1024)
	}
	w("")
	w("The machine's CPU is all the CPU time /proc/stat counts during node-add's run: the master's side")
	w("and the nodes' (their sshd, key exchange, node-side programs, sshd reloads and node daemons run")
	w("on the same cores), and whatever else ran meanwhile. Divided by the cores, it is the least wall")
	w("time the run could take on this machine: a wall time close to it is CPU-bound, one far above it")
	w("waits. On real machines each node's share runs on its own CPU.")
	w("")
	w("Peak RSS is GNU time's maximum resident set size of node-add (its largest ssh child is smaller).")
	w("")
	w("The key exchange: OpenSSH 9.2's default, sntrup761x25519-sha512 (a post-quantum hybrid),")
	w("costs about 95 ms of the ssh client's CPU per connection on this machine, against 20 ms for a")
	w("whole connection with curve25519-sha256 (doc/performance.md); OpenSSH 9.9 and later (Debian 13)")
	w("offer mlkem768x25519-sha256 first, post-quantum as well and far cheaper. An operator who accepts")
	w("classic ECDH for the join can say so in the ssh_config node-add's ssh reads; the same run,")
	w("on another group of nodes of the same lab, with `KexAlgorithms %s` in the master's", classicKex)
	w("`~/.ssh/config` (one run each; the documents carry the cluster's secrets, which a")
	w("post-quantum exchange protects against recording now and breaking later):")
	w("")
	w("| nodes | node-add, default key exchange (median) | node-add, %s | CPU (with its ssh): default (median) / %s | machine CPU / %d cores: default (median) / %s | load before |", classicKex, classicKex, runtime.NumCPU(), classicKex)
	w("|---:|---:|---:|---:|---:|---|")
	for _, r := range rows {
		if r.classic == nil {
			continue
		}
		cores := time.Duration(runtime.NumCPU())
		w("| %d | %s | %s | %s / %s | %s / %s | %s |", r.nodes, round(median(r.newWall)), round(r.classic.wall),
			round(median(r.newCPU)), round(r.classic.cpu), round(median(r.busy)/cores), round(r.classic.busy/cores), r.classic.load)
	}
	w("")
}

// joinSteps are the steps of one join as node-add times them, in order.
var joinSteps = []string{"connect", "prepare-node-join", "node-daemon-setup", "node-daemon", "record"}

// renderSteps breaks joins down by step: every join of the one-node runs,
// and the joins of the largest size run in parallel.
func renderSteps(w func(string, ...any), rows []row) {
	w("### node-add: one join, step by step")
	w("")
	w("From `node-add --output json` (`step_seconds`, `seconds`, and each `ssconf_push`): connect is")
	w("ssh's connection with the host key check and login (ssh -G, ssh-keygen -F, the handshake);")
	w("each program's step is its SSH session, the program's whole run on the node (its sshd or")
	w("node daemon restart included); node-daemon is the wait until noded answers over TLS; record")
	w("is the master's files under its lock; the ssconf push is one node's PUT /ssconf after the run.")
	w("")
	header := "| step |"
	rule := "|---|"
	var cols []row
	for _, r := range rows {
		if r.nodes == 1 || r.nodes == rows[len(rows)-1].nodes {
			if len(cols) == 0 || cols[len(cols)-1].nodes != r.nodes {
				cols = append(cols, r)
				header += fmt.Sprintf(" %d node(s): min / median / max of %d joins |", r.nodes, len(r.steps))
				rule += "---:|"
			}
		}
	}
	w("%s", header)
	w("%s", rule)
	line := func(name string, vals func(r row) []time.Duration) {
		l := "| " + name + " |"
		for _, r := range cols {
			l += " " + spread(vals(r)) + " |"
		}
		w("%s", l)
	}
	for _, step := range joinSteps {
		line(step, func(r row) []time.Duration {
			var fs []float64
			for _, s := range r.steps {
				if v, ok := s[step]; ok {
					fs = append(fs, v)
				}
			}
			return seconds(fs)
		})
	}
	line("whole join", func(r row) []time.Duration {
		var fs []float64
		for _, s := range r.steps {
			fs = append(fs, s["seconds"])
		}
		return seconds(fs)
	})
	line("ssconf push (one node)", func(r row) []time.Duration { return seconds(r.pushes) })
	line("node-add, whole run", func(r row) []time.Duration { return r.newWall })
	w("")
}
