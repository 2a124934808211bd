package cluster_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/sshkeys"
)

// writeRSAPair gives the master an RSA host key pair besides its ed25519
// one, and returns the pair's base path.
func writeRSAPair(t testing.TB, c *cluster.Cluster, priv, pub []byte) string {
	t.Helper()
	base := c.Config.Path(filepath.Join(c.Config.SSHConfigDir, cluster.HostKeyPrefix+"rsa_key"))
	if err := os.WriteFile(base, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base+".pub", pub, 0o644); err != nil {
		t.Fatal(err)
	}
	return base
}

// A pair found to match once is not checked again, but a torn pair (the
// private file of one key, the public of another) is still found out.
func TestReadHostKeysTorn(t *testing.T) {
	_, c := initCluster(t)
	priv1, pub1, err := sshkeys.Generate(sshkeys.RSA, 2048, "")
	if err != nil {
		t.Fatal(err)
	}
	_, pub2, err := sshkeys.Generate(sshkeys.RSA, 2048, "")
	if err != nil {
		t.Fatal(err)
	}
	base := writeRSAPair(t, c, priv1, pub1)
	for i, step := range []struct {
		pub  []byte
		want bool
	}{{pub1, true}, {pub1, true}, {pub2, false}, {pub1, true}} {
		if err := os.WriteFile(base+".pub", step.pub, 0o644); err != nil {
			t.Fatal(err)
		}
		matched, err := cluster.HostKeysMatch(c.Config)
		if err != nil || matched != step.want {
			t.Fatalf("read %d: matched %v, %v; want %v", i, matched, err, step.want)
		}
	}
	keys, err := cluster.ReadHostKeys(c.Config)
	if err != nil || len(keys) != 2 {
		t.Fatalf("ReadHostKeys: %d pairs, %v", len(keys), err)
	}
}

// BenchmarkReadHostKeys: what a join pays twice for the master's pairs
// (an ed25519 and an RSA 3072 one).
func BenchmarkReadHostKeys(b *testing.B) {
	_, c := initCluster(b)
	priv, pub, err := sshkeys.Generate(sshkeys.RSA, 3072, "")
	if err != nil {
		b.Fatal(err)
	}
	writeRSAPair(b, c, priv, pub)
	for b.Loop() {
		if _, err := cluster.ReadHostKeys(c.Config); err != nil {
			b.Fatal(err)
		}
	}
}
