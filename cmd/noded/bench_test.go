package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/node/nodedserver"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/noded"
)

// BenchmarkJoinNoded is what a join costs the node daemon, one join per
// op, on a node where none runs yet: noded --restart, the master's
// version request (a new client, as each join makes), then its ssconf
// push (another client, as node-add's push after the run). It reports CPU
// time, not wall time, in ms per op (min, median, max over the ops):
// restart is the --restart process (its rusage), start+version the new
// daemon from its start to its answer, push the daemon's share of the
// PUT (both from the daemon's threads' schedstat). The master's client
// certificate is RSA 2048, as cluster-init makes it.
func BenchmarkJoinNoded(b *testing.B) {
	tmp := b.TempDir()
	bin := filepath.Join(fixture.BuildPrograms(b, "../noded"), "noded")
	serverPEM, err := certs.NewClusterCertificate("c1.example.org", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	cluster, _ := certs.ParseKeyPair(serverPEM)
	masterPEM, err := certs.NewClientCertificate(cluster, "master.example.org", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	master, _ := certs.ParseKeyPair(masterPEM)
	update := &joindoc.SsconfUpdate{ClusterName: "c1.example.org", Ssconf: map[string]string{
		"cluster_name": "c1.example.org", "master_node": "master.example.org",
		"node_list": "master.example.org\nnode1.example.org"}}
	ctx := context.Background()
	var restart, start, push []float64
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		root := filepath.Join(tmp, "node"+strconv.Itoa(i))
		port, err := fixture.FreePort()
		if err != nil {
			b.Fatal(err)
		}
		conf, _ := json.Marshal(map[string]any{"node_daemon_port": port})
		data := filepath.Join(root, "var/lib/ganeti")
		for p, content := range map[string]string{
			filepath.Join(root, "etc/nodejoin/node.json"):         string(conf),
			filepath.Join(data, "server.pem"):                     string(serverPEM),
			filepath.Join(data, "ssconf_cluster_name"):            "c1.example.org\n",
			filepath.Join(data, "ssconf_master_node"):             "master.example.org\n",
			filepath.Join(data, "ssconf_master_candidates_certs"): "master.example.org=" + certs.Digest(master.Cert) + "\n",
		} {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				b.Fatal(err)
			}
		}
		cfg, err := nodeconf.Load(root)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		cmd := exec.Command(bin, "--restart", "--root", root)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("noded --restart: %v\n%s", err, out)
		}
		restart = append(restart, ms(cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime()))
		pid, err := os.ReadFile(nodedserver.PidFile(cfg))
		if err != nil {
			b.Fatal(err)
		}
		daemon := strings.TrimSpace(string(pid))
		if _, err := noded.NewClient(cluster.Cert, master).Version(ctx, "127.0.0.1", port); err != nil {
			b.Fatal(err)
		}
		cpu0 := threadsCPU(b, daemon)
		if _, err := noded.NewClient(cluster.Cert, master).PutSsconf(ctx, "127.0.0.1", port, update); err != nil {
			b.Fatal(err)
		}
		cpu1 := threadsCPU(b, daemon)
		start, push = append(start, ms(cpu0)), append(push, ms(cpu1-cpu0))
		b.StopTimer()
		if out, err := exec.Command(bin, "--stop", "--root", root).CombinedOutput(); err != nil {
			b.Fatalf("noded --stop: %v\n%s", err, out)
		}
		b.StartTimer()
	}
	for name, v := range map[string][]float64{"restart": restart, "start+version": start, "push": push} {
		slices.Sort(v)
		b.ReportMetric(v[0], name+"-cpu-ms-min")
		b.ReportMetric(v[len(v)/2], name+"-cpu-ms-median")
		b.ReportMetric(v[len(v)-1], name+"-cpu-ms-max")
	}
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// threadsCPU is the CPU time pid's threads have run (schedstat, in ns).
func threadsCPU(b *testing.B, pid string) time.Duration {
	b.Helper()
	tasks, err := filepath.Glob("/proc/" + pid + "/task/*/schedstat")
	if err != nil || len(tasks) == 0 {
		b.Fatalf("no threads of pid %s: %v", pid, err)
	}
	var sum time.Duration
	for _, t := range tasks {
		s, err := os.ReadFile(t)
		if err != nil {
			continue // a thread that ended
		}
		f := strings.Fields(string(s))
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			b.Fatalf("%s: %q", t, s)
		}
		sum += time.Duration(n)
	}
	return sum
}
