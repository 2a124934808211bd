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
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nodejoin/nodejoin/qa/clusterlab"
	"github.com/nodejoin/nodejoin/qa/harness"
)

// run is harness.TB for a program: Fatalf and Skip tear down and exit.
type run struct {
	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

func (r *run) Helper()                         {}
func (r *run) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "demo: "+format+"\n", args...) }
func (r *run) Errorf(format string, args ...any) {
	r.Logf(format, args...)
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
}
func (r *run) Fatalf(format string, args ...any) { r.Logf(format, args...); r.exit(1) }
func (r *run) Skip(args ...any) {
	fmt.Fprintln(os.Stderr, append([]any{"demo:"}, args...)...)
	r.exit(1)
}
func (r *run) Cleanup(f func()) { r.mu.Lock(); r.cleanups = append(r.cleanups, f); r.mu.Unlock() }

// teardown runs the cleanups, last first, once.
func (r *run) teardown() {
	r.mu.Lock()
	cs := r.cleanups
	r.cleanups = nil
	r.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
}

func (r *run) exit(code int) {
	r.teardown()
	os.Exit(code)
}

func main() {
	r := &run{}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "\ndemo: %v: tearing the lab down\n", s)
		r.exit(130)
	}()
	demo(r)
	step("tearing the lab down")
	r.teardown()
	if r.failed {
		os.Exit(1)
	}
	fmt.Println("demo: done; nothing is left behind (namespaces, processes, mounts)")
}

func step(format string, args ...any) {
	fmt.Printf("\n== "+format+"\n", args...)
}

func demo(r *run) {
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
