// Demo is `make demo`: it starts a master and three nodes (qa/harness
// namespace hosts, each with its own sshd), creates a cluster on the master,
// joins the three nodes with node-add (its progress on the terminal), prints
// what now holds on each node, and tears everything down, also on Ctrl-C.
// It needs root.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nodejoin/nodejoin/qa/clusterlab"
	"github.com/nodejoin/nodejoin/qa/harness"
)

func main() {
	r := harness.NewProgram("demo")
	// The machine's directories a program would write (/var/log,
	// /var/lib/ganeti, /run, ...): each lab host has its own, so the demo
	// must leave these as they are.
	before, err := harness.TakeSnapshot()
	if err != nil {
		r.Fatalf("recording the machine's directories: %v", err)
	}
	demo(r)
	step("tearing the lab down")
	r.Teardown()
	if err := harness.CheckNothingOutside(before); err != nil {
		r.Errorf("%v", err)
	}
	if r.Failed() {
		os.Exit(1)
	}
	fmt.Printf("demo: done; nothing is left behind (namespaces, processes, mounts), and %s are as they were\n",
		strings.Join(harness.OutsideDirs, " "))
}

func step(format string, args ...any) {
	fmt.Printf("\n== "+format+"\n", args...)
}

func demo(r *harness.Program) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	r.Cleanup(cancel)
	step("building the programs and starting a master and three nodes (Linux namespaces, each with its own sshd)")
	start := time.Now()
	l := clusterlab.New(r, harness.Options{Nodes: 3})
	for _, h := range l.Hosts() {
		fmt.Printf("   %-7s %s\n", h.Name, h.IP())
	}
	fmt.Printf("   up in %v\n", time.Since(start).Round(time.Millisecond))

	step("master# cluster-init --cluster-name %s", clusterlab.ClusterName)
	res := l.Init(ctx)
	fmt.Print(indent(res.Stdout + res.Stderr))
	if !res.OK() {
		r.Fatalf("cluster-init failed: exit %d %v", res.Code, res.Err)
	}

	// The operator reads each node's host key fingerprint on its console
	// and pins it: no trust on first use.
	args := []string{"node-add"}
	for _, n := range l.Nodes {
		fp, err := clusterlab.Fingerprint(ctx, n, "/etc/ssh/ssh_host_ed25519_key.pub")
		if err != nil {
			r.Fatalf("%v", err)
		}
		args = append(args, "--host-key-fingerprint", n.Name+"="+fp)
	}
	args = append(args, clusterlab.Names(l.Nodes)...)
	step("master# %s", strings.Join(args, " "))
	cmd := l.Master.Command(ctx, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	start = time.Now()
	if err := cmd.Run(); err != nil {
		r.Errorf("node-add: %v", err)
	}
	fmt.Printf("   (%v)\n", time.Since(start).Round(time.Millisecond))

	conns := map[string]int{}
	for _, n := range l.Nodes {
		conns[n.Name] = n.CountSSHConnections()
	}

	step("what now holds on each node")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "node\thost key (ed25519)\troot key\tssconf cluster_name\tnoded (TLS)\tssh as cluster")
	clusterFP, _ := clusterlab.Fingerprint(ctx, l.Master, "/etc/ssh/ssh_host_ed25519_key.pub")
	for _, n := range l.Nodes {
		hk, err := clusterlab.Fingerprint(ctx, n, "/etc/ssh/ssh_host_ed25519_key.pub")
		if err != nil {
			hk = "?"
		} else if hk == clusterFP {
			hk += " (cluster's)"
		}
		rk, err := clusterlab.Fingerprint(ctx, n, "/root/.ssh/id_ed25519.pub")
		if err != nil {
			rk = "none"
		}
		name := "none"
		if b, err := os.ReadFile(n.Path("/var/lib/ganeti/ssconf_cluster_name")); err == nil {
			name = strings.TrimSpace(string(b))
		}
		noded := "yes"
		if _, err := l.NodedVersion(ctx, n); err != nil {
			noded = "no: " + err.Error()
		}
		ssh := "yes"
		if res := l.SSHAsCluster(ctx, n, "true"); !res.OK() {
			ssh = "no"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, hk, rk, name, noded, ssh)
	}
	tw.Flush()
	fmt.Printf("\n   SSH connections each node's sshd accepted for the join (from its log): ")
	for _, n := range l.Nodes {
		fmt.Printf("%s %d  ", n.Name, conns[n.Name])
	}
	fmt.Println()
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return "   " + strings.ReplaceAll(s, "\n", "\n   ") + "\n"
}
