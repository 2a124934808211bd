package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/sshkeys"
)

// TestKilledAtEveryStep kills prepare-node-join at each write step: each
// file is old or new, and the next run ends where an uninterrupted one does.
func TestKilledAtEveryStep(t *testing.T) {
	c, err := fixture.NewCluster("c1.example.org")
	if err != nil {
		t.Fatal(err)
	}
	// The node's own root key exists and is kept, so both runs write the
	// same bytes; the host keys and authorized_keys are replaced.
	priv, pub, err := sshkeys.Generate(sshkeys.Ed25519, 256, "root@node")
	if err != nil {
		t.Fatal(err)
	}
	fixture.CrashSweep(t, fixture.CrashCase{
		Pkg: "./cmd/prepare-node-join",
		Doc: fixture.JSON(c.Prepare()),
		Setup: func(root string) {
			files := map[string]string{
				"etc/ssh/ssh_host_ed25519_key":     "old private",
				"etc/ssh/ssh_host_ed25519_key.pub": "old public",
				"root/.ssh/id_ed25519":             string(priv),
				"root/.ssh/id_ed25519.pub":         string(pub),
				"root/.ssh/authorized_keys":        "# old\n",
			}
			for p, data := range files {
				p = filepath.Join(root, p)
				_ = os.MkdirAll(filepath.Dir(p), 0o700)
				if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		},
	})
}

// TestJoinRecordJournaledWithFiles: the join record is written in the same
// phases as the files it records, so the first journal write, before any
// file is touched, names it with them (it was a second write of its own).
func TestJoinRecordJournaledWithFiles(t *testing.T) {
	c, err := fixture.NewCluster("c1.example.org")
	if err != nil {
		t.Fatal(err)
	}
	bin := fixture.FailpointBinary(t, "./cmd/prepare-node-join")
	for n := 1; n < 100; n++ {
		root := fixture.NewRoot(t)
		cmd := exec.Command(bin, "--root", root)
		cmd.Stdin = bytes.NewReader(fixture.JSON(c.Prepare()))
		cmd.Env = append(os.Environ(), "NODEJOIN_CRASH_AT="+strconv.Itoa(n))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err == nil {
			t.Fatalf("the run was never killed after a journal write:\n%s", stderr.String())
		}
		if !strings.Contains(stderr.String(), ": journaled ") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, "var/lib/nodejoin/journal.json"))
		if err != nil {
			t.Fatal(err)
		}
		var j struct {
			Entries []struct {
				NodePath string `json:"node_path"`
			} `json:"entries"`
		}
		if err := json.Unmarshal(data, &j); err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, e := range j.Entries {
			paths = append(paths, e.NodePath)
		}
		if !slices.Contains(paths, "/var/lib/nodejoin/join-record.json") || !slices.Contains(paths, "/root/.ssh/authorized_keys") {
			t.Errorf("the first journal write names %q; want the files and the join record", paths)
		}
		return
	}
}
