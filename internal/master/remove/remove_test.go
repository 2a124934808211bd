package remove

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/daemon"
	"github.com/nodejoin/nodejoin/internal/fakessh"
	"github.com/nodejoin/nodejoin/internal/master/callback"
	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/master/clusterinit"
	"github.com/nodejoin/nodejoin/internal/master/clustertest"
	"github.com/nodejoin/nodejoin/internal/master/slotstore"
	"github.com/nodejoin/nodejoin/internal/master/sshrun"
	"github.com/nodejoin/nodejoin/internal/problem"
)

func TestMain(m *testing.M) {
	if fakessh.IsFake() {
		os.Exit(fakessh.Main())
	}
	os.Exit(m.Run())
}

const node = "127.0.0.1"

// setup makes a cluster, its files as they were before node joined, and
// records node as a join would; the fake node presents the cluster's host
// key, as a joined node does.
func setup(t *testing.T, mode string) (*cluster.Cluster, *fakessh.Fake, Options, map[string]string) {
	t.Helper()
	root := t.TempDir()
	c := clustertest.New(t, clusterinit.InitOptions{Root: root, ClusterName: "c1.example.org", MasterNode: "master.example.org", MasterIP: "192.0.2.1"})
	before := files(t, root)
	if _, err := c.RecordNode(cluster.Node{Name: node, PrimaryIP: node, RootPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeNodeRootKey0000000000000000000000000000 root@node"}); err != nil {
		t.Fatal(err)
	}
	doc, err := c.PrepareDoc()
	if err != nil {
		t.Fatal(err)
	}
	fs := strings.Fields(doc.SSHHostKey[0].Public)
	f := fakessh.Install(t, mode, fakessh.HostKey{Type: fs[0], Base64: fs[1]})
	o := Options{Cluster: c, CleanupProgram: "node-cleanup", Timeout: 30 * time.Second, Parallel: 1,
		SSH: sshrun.Config{ConnectTimeout: 5 * time.Second}, Callback: callback.DefaultOptions(),
		JoinServiceSocket: filepath.Join(root, "run/nodejoin/join-service.sock"), StoreDir: filepath.Join(root, "var/lib/nodejoin/join-service"),
		Log: slog.New(slog.DiscardHandler)}
	return c, f, o, before
}

// files is every file of the master, with its mode; but the lock
// directory's lock files, which stay.
func files(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if filepath.Dir(rel) == "var/lock" {
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = fi.Mode().String() + " " + string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func same(t *testing.T, want, got map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: want %.80q, got %.80q", k, v, got[k])
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: new", k)
		}
	}
}

func cleanupOK(t *testing.T, f *fakessh.Fake) {
	f.Program(t, "node-cleanup", fmt.Sprintf("echo \"$*\" >%q\ncat >%q\necho '{\"program\":\"node-cleanup\",\"changed\":true,\"dry_run\":false,\"files\":[],\"restarted\":[\"sshd\"],\"stopped\":[\"node daemon\"],\"kept\":[{\"path\":\"/root/.ssh/authorized_keys\",\"reason\":\"changed since the join\"}]}'\n",
		filepath.Join(f.Dir, "args"), filepath.Join(f.Dir, "doc.json")))
}

// A reachable node is cleaned over one connection, with the cluster's
// name; the master's files are then as before the node joined.
func TestRemove(t *testing.T) {
	c, f, o, before := setup(t, "ok")
	cleanupOK(t, f)
	res, err := Remove(context.Background(), o, node)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || !res.Reached || !res.Unrecorded || res.Cleanup == nil || len(res.Cleanup.Kept) != 1 {
		t.Errorf("result %+v", res)
	}
	if got, _ := os.ReadFile(filepath.Join(f.Dir, "doc.json")); string(got) != `{"cluster_name":"c1.example.org"}` {
		t.Errorf("node-cleanup's document: %s", got)
	}
	if f.Connections() != 1 {
		t.Errorf("%d connections, want 1", f.Connections())
	}
	if !strings.Contains(strings.Join(res.Warnings, "\n"), "kept on the node: /root/.ssh/authorized_keys (changed since the join)") {
		t.Errorf("warnings %q", res.Warnings)
	}
	same(t, before, files(t, c.Config.Root))
	if ok, _ := c.Recorded(node); ok {
		t.Error("still recorded")
	}
}

// A node that does not answer is removed on the master, with a warning
// that says how to clean it when it is back.
func TestRemoveDownNode(t *testing.T) {
	c, _, o, before := setup(t, "unreachable")
	res, err := Remove(context.Background(), o, node)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.Reached || !res.Unrecorded {
		t.Errorf("result %+v", res)
	}
	if w := strings.Join(res.Warnings, "\n"); !strings.Contains(w, "does not answer") ||
		!strings.Contains(w, `echo '{"cluster_name": "c1.example.org"}' | node-cleanup`) {
		t.Errorf("warnings %q", res.Warnings)
	}
	same(t, before, files(t, c.Config.Root))
}

// A node that answers but whose node-cleanup refuses leaves the master as
// it was; --force removes it on the master anyway.
func TestRemoveCleanupFails(t *testing.T) {
	c, f, o, before := setup(t, "ok")
	f.Program(t, "node-cleanup", "cat >/dev/null\necho 'node-cleanup: error: invalid input: /var/lib/nodejoin/join-record.json: no record' >&2\nexit 3\n")
	recorded := files(t, c.Config.Root)
	_, err := Remove(context.Background(), o, node)
	if err == nil || !strings.Contains(err.Error(), "node-cleanup exited 3") || !strings.Contains(problem.Hints(err)[0], "--force") {
		t.Fatalf("err %v", err)
	}
	same(t, recorded, files(t, c.Config.Root))

	o.Force = true
	res, err := Remove(context.Background(), o, node)
	if err != nil || !res.OK || !res.Unrecorded || !res.Reached {
		t.Fatalf("--force: %+v, %v", res, err)
	}
	same(t, before, files(t, c.Config.Root))
}

// Refusals change nothing: the master itself, a name the master has not
// recorded (without --force), a name that is not one.
func TestRemoveRefusals(t *testing.T) {
	c, _, o, _ := setup(t, "ok")
	was := files(t, c.Config.Root)
	for _, n := range []string{"master.example.org", "node9.example.org", "-bad"} {
		_, err := Remove(context.Background(), o, n)
		var rej *problem.RejectedError
		if !errors.As(err, &rej) {
			t.Errorf("%s: %v; want a refusal", n, err)
		}
	}
	same(t, was, files(t, c.Config.Root))
}

// A dry run asks node-cleanup for its plan and changes nothing.
func TestRemoveDryRun(t *testing.T) {
	c, f, o, _ := setup(t, "ok")
	cleanupOK(t, f)
	was := files(t, c.Config.Root)
	o.DryRun = true
	res, err := Remove(context.Background(), o, node)
	if err != nil || !res.DryRun || !res.Unrecorded {
		t.Fatalf("%+v, %v", res, err)
	}
	if args, _ := os.ReadFile(filepath.Join(f.Dir, "args")); strings.TrimSpace(string(args)) != "--dry-run" {
		t.Errorf("node-cleanup's arguments: %q", args)
	}
	same(t, was, files(t, c.Config.Root))
}

// A node behind a machine callback is cleaned through its tunnel, and its
// grant revoked with it: the master's files are then as before both the
// grant and the join.
func TestRemoveRevokesCallbackGrant(t *testing.T) {
	c, f, o, before := setup(t, "ok")
	cleanupOK(t, f)
	c.Config.SSHDCheckCommand, c.Config.SSHDRestartCommand = daemon.Builtin("true"), daemon.Builtin("true")
	o.Callback.UserAdd, o.Callback.UserDel = daemon.Builtin("true"), daemon.Builtin("true")
	sshd := filepath.Join(c.Config.Root, "etc/ssh/sshd_config")
	if err := os.MkdirAll(filepath.Dir(sshd), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sshd, []byte("UsePAM no\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before["etc/ssh/sshd_config"] = "-rw-r--r-- UsePAM no\n"
	req := &callback.Request{Node: node, PublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOZ4JPPa70SIJBMkC57XTmA3vVR303EPi7z3LAc9XB4y c1"}
	g, err := callback.Grant(context.Background(), c.Config, o.Log, o.Callback, req, false)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Remove(context.Background(), o, node)
	if err != nil || !res.CallbackRevoked || !res.Reached {
		t.Fatalf("%+v, %v", res, err)
	}
	// node-cleanup went through the node's tunnel, as node-add would.
	if cl := f.Cmdlines(); !strings.Contains(cl, "HostName=localhost") || !strings.Contains(cl, fmt.Sprintf("-p %d", g.Port)) {
		t.Errorf("ssh command lines:\n%s", cl)
	}
	same(t, before, files(t, c.Config.Root))
}

// With join-service stopped, the node's slots go from its embedded store
// directly; other slots stay.
func TestRemoveSlotsInTheStore(t *testing.T) {
	_, f, o, _ := setup(t, "ok")
	cleanupOK(t, f)
	ctx := context.Background()
	st, err := slotstore.Open(ctx, slotstore.Config{Dir: o.StoreDir}, slotstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mine, err := st.Add(ctx, slotstore.NewSlot{NodeName: node, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	other, err := st.Add(ctx, slotstore.NewSlot{NodeName: "node2.example.org", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	res, err := Remove(ctx, o, node)
	if err != nil || len(res.SlotsRemoved) != 1 || res.SlotsRemoved[0] != mine.Slot.UUID {
		t.Fatalf("%+v, %v", res, err)
	}
	st, err = slotstore.Open(ctx, slotstore.Config{Dir: o.StoreDir}, slotstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	left, err := st.List(ctx)
	if err != nil || len(left) != 1 || left[0].UUID != other.Slot.UUID {
		t.Errorf("slots left: %+v, %v", left, err)
	}
}
