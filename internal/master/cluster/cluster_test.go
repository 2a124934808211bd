package cluster_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/master/clusterinit"
	"github.com/nodejoin/nodejoin/internal/master/clustertest"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/ssconf"
)

func initCluster(t testing.TB) (string, *cluster.Cluster) {
	root := t.TempDir()
	return root, clustertest.New(t, clusterinit.InitOptions{Root: root, ClusterName: "c1.example.org", MasterNode: "master.example.org", MasterIP: "192.0.2.1"})
}

func TestDocuments(t *testing.T) {
	_, c := initCluster(t)
	p, err := c.PrepareDoc()
	if err != nil {
		t.Fatal(err)
	}
	if p.ClusterName != "c1.example.org" || len(p.SSHHostKey) != 1 || p.SSHHostKey[0].Kind != "ed25519" ||
		!strings.HasPrefix(p.NodeDaemonCertificate, "-----BEGIN CERTIFICATE-----") ||
		strings.Contains(p.NodeDaemonCertificate, "PRIVATE") || len(p.AuthorizedKeys["master.example.org"]) != 1 ||
		p.SSHKeyType != "ed25519" || p.SSHKeyBits != 256 {
		b, _ := json.Marshal(p)
		t.Errorf("prepare document: %.300s", b)
	}
	d, err := c.DaemonSetupDoc("node10.example.org", "192.0.2.10")
	if err != nil {
		t.Fatal(err)
	}
	if d.Ssconf["node_list"] != "master.example.org\nnode10.example.org" ||
		d.Ssconf["node_primary_ips"] != "master.example.org 192.0.2.1\nnode10.example.org 192.0.2.10" ||
		d.Ssconf["cluster_name"] != "c1.example.org" || !d.StartNodeDaemon || d.NodeName != "node10.example.org" ||
		!strings.Contains(d.NodeDaemonCertificate, "PRIVATE KEY") || len(d.HMACKey) != 65 {
		t.Errorf("daemon setup document: %+v", d.Ssconf)
	}
}

// 200 concurrent joins leave exactly 200 entries in every list.
func TestRecordNodeConcurrent(t *testing.T) {
	root, c := initCluster(t)
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each join opens the cluster itself, as separate node-add runs would.
			c, err := cluster.Open(root)
			if err == nil {
				var changed bool
				changed, err = c.RecordNode(cluster.Node{Name: fmt.Sprintf("node%d.example.org", i), PrimaryIP: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1),
					RootPublicKey: fmt.Sprintf("ssh-ed25519 AAAAkey%d root@node%d", i, i)})
				if err == nil && !changed {
					err = fmt.Errorf("recording node%d reports no change", i)
				}
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	count := func(name string) int {
		b, err := os.ReadFile(c.Path(name))
		if err != nil {
			t.Fatal(err)
		}
		return len(ssconf.Lines(string(b)))
	}
	for _, f := range []string{"ssconf_node_list", "ssconf_online_nodes", "ssconf_node_primary_ips", nodeconf.PubKeys} {
		if got := count(f); got != n+1 {
			t.Errorf("%s: %d lines, want %d", f, got, n+1)
		}
	}
	kh, _ := os.ReadFile(c.Path(nodeconf.KnownHosts))
	if got := strings.Count(strings.Fields(string(kh))[0], ","); got != n {
		t.Errorf("known_hosts: %d node names beside the alias, want %d", got, n)
	}
	nl, _ := os.ReadFile(c.Path("ssconf_node_list"))
	if !strings.HasPrefix(string(nl), "master.example.org\nnode0.example.org\nnode1.example.org\nnode2.example.org\n") {
		t.Errorf("node_list not nice-sorted: %.100q", nl)
	}
	// Recording again changes nothing.
	before, _ := os.ReadFile(c.Path(nodeconf.PubKeys))
	if changed, err := c.RecordNode(cluster.Node{Name: "node7.example.org", PrimaryIP: "10.0.0.8", RootPublicKey: "ssh-ed25519 AAAAkey7 root@node7"}); err != nil || changed {
		t.Fatalf("recording again: changed %v, %v", changed, err)
	}
	if ok, err := c.Recorded("node7.example.org"); !ok || err != nil {
		t.Errorf("Recorded(node7) = %v, %v", ok, err)
	}
	if ok, err := c.Recorded("node7"); ok || err != nil {
		t.Errorf("Recorded(node7) = %v, %v", ok, err)
	}
	if after, _ := os.ReadFile(c.Path(nodeconf.PubKeys)); string(after) != string(before) {
		t.Error("recording a node twice changed ganeti_pub_keys")
	}
	if left, _ := filepath.Glob(c.Path(".*tmp*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// The master's client.pem is what nodes trust for writes: cluster-init
// lists its digest in master_candidates_certs, and what node-add sends and
// records keeps it listed even when the master's file lost it or names an
// older certificate.
func TestMasterCandidateCerts(t *testing.T) {
	root, c := initCluster(t)
	want := "master.example.org=" + certs.Digest(c.Client.Cert)
	p := filepath.Join(root, "var/lib/ganeti/ssconf_master_candidates_certs")
	if b, err := os.ReadFile(p); err != nil || string(b) != want+"\n" {
		t.Fatalf("after cluster-init: %q, %v; want %q", b, err, want)
	}
	other := "node1.example.org=AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01"
	stale := "master.example.org=00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33"
	for _, old := range []string{"", stale, stale + "\n" + other, "-"} {
		if old == "-" {
			os.Remove(p)
		} else {
			os.Chmod(p, 0o644)
			if err := os.WriteFile(p, []byte(old+"\n"), 0o444); err != nil {
				t.Fatal(err)
			}
		}
		wantNow := want
		if strings.Contains(old, other) {
			wantNow = want + "\n" + other
		}
		d, err := c.DaemonSetupDoc("node10.example.org", "192.0.2.10")
		if err != nil || d.Ssconf["master_candidates_certs"] != wantNow {
			t.Errorf("master's file %q: node-daemon-setup gets %q, %v; want %q", old, d.Ssconf["master_candidates_certs"], err, wantNow)
		}
		if _, err := c.RecordNode(cluster.Node{Name: "node10.example.org", PrimaryIP: "192.0.2.10"}); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(p); err != nil || string(b) != wantNow+"\n" {
			t.Errorf("master's file %q: after recording a node %q, %v; want %q", old, b, err, wantNow)
		}
	}
}
