package cluster_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nodejoin/nodejoin/internal/master/cluster"
)

// files is every file under root, by relative path, with its mode; but
// the lock directory, whose lock files stay (unlinking a lock file others
// may wait on is unsafe, and /var/lock is a runtime directory).
func files(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		if filepath.Dir(rel) == "var/lock" {
			return err
		}
		out[rel] = fi.Mode().String() + " " + string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Recording nodes and taking them out again leaves the master's files as
// they were, byte for byte and mode for mode; the other node stays.
func TestUnrecordNode(t *testing.T) {
	root, c := initCluster(t)
	before := files(t, root)
	n1 := cluster.Node{Name: "node1.example.org", PrimaryIP: "192.0.2.11", RootPublicKey: "ssh-ed25519 AAAAkey1 root@node1"}
	n2 := cluster.Node{Name: "node2.example.org", PrimaryIP: "192.0.2.12", RootPublicKey: "ssh-ed25519 AAAAkey2 root@node2"}
	if _, err := c.RecordNode(n1); err != nil {
		t.Fatal(err)
	}
	withOne := files(t, root)
	if _, err := c.RecordNode(n2); err != nil {
		t.Fatal(err)
	}
	changed, err := c.UnrecordNode(n2.Name)
	if err != nil || !changed {
		t.Fatalf("unrecord node2: %v, changed %v", err, changed)
	}
	equal(t, withOne, files(t, root))
	if changed, err = c.UnrecordNode(n2.Name); err != nil || changed {
		t.Errorf("unrecord node2 again: %v, changed %v; want no change", err, changed)
	}
	if ok, _ := c.Recorded(n1.Name); !ok {
		t.Error("node1 is no longer recorded")
	}
	if _, err := c.UnrecordNode(n1.Name); err != nil {
		t.Fatal(err)
	}
	equal(t, before, files(t, root))
}

func equal(t *testing.T, want, got map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: want %q, got %q", k, v, got[k])
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: new", k)
		}
	}
}
