package cluster_test

import (
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/sshkeys"
)

// A node's first join is recorded with how it joined; joining again as
// it was keeps that record; a new root key (a reinstalled node) is a new
// join.
func TestJoinRecords(t *testing.T) {
	_, c := initCluster(t)
	_, pub1, err := sshkeys.Generate(sshkeys.Ed25519, 0, "root@node1")
	if err != nil {
		t.Fatal(err)
	}
	_, pub2, err := sshkeys.Generate(sshkeys.Ed25519, 0, "root@node1")
	if err != nil {
		t.Fatal(err)
	}
	fp := func(line []byte) string {
		k, err := sshkeys.ParsePublicLine(string(line))
		if err != nil {
			t.Fatal(err)
		}
		return sshkeys.Fingerprint(k)
	}
	before := time.Now().UTC()
	n := cluster.Node{Name: "node1.example.org", PrimaryIP: "192.0.2.11", RootPublicKey: string(pub1), Via: cluster.ViaPush, HostKey: "SHA256:own"}
	if _, err := c.RecordNode(n); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RecordNode(cluster.Node{Name: "node2.example.org", PrimaryIP: "192.0.2.12", Via: cluster.ViaPull}); err != nil {
		t.Fatal(err)
	}
	j, err := c.Joins()
	if err != nil {
		t.Fatal(err)
	}
	first := j["node1.example.org"]
	if first.Via != "push" || first.HostKey != "SHA256:own" || first.RootKey != fp(pub1) || first.JoinedAt.Before(before) {
		t.Errorf("node1's record %+v, want push, SHA256:own, %s, at or after %v", first, fp(pub1), before)
	}
	if j["node2.example.org"].Via != "pull" || len(j) != 2 {
		t.Errorf("records %+v, want node2 by pull and no other", j)
	}

	n.Via, n.HostKey = cluster.ViaCallback, "SHA256:cluster"
	if _, err := c.RecordNode(n); err != nil {
		t.Fatal(err)
	}
	if j, _ = c.Joins(); j["node1.example.org"] != first {
		t.Errorf("joined again as it was: record %+v, want the first %+v", j["node1.example.org"], first)
	}
	n.RootPublicKey = string(pub2)
	if _, err := c.RecordNode(n); err != nil {
		t.Fatal(err)
	}
	j, _ = c.Joins()
	if got := j["node1.example.org"]; got.RootKey != fp(pub2) || got.Via != "callback" || !got.JoinedAt.After(first.JoinedAt) {
		t.Errorf("joined with a new root key: record %+v, want a new one after %v", got, first.JoinedAt)
	}
}
