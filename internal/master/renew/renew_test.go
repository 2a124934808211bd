package renew

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/master/clusterinit"
	"github.com/nodejoin/nodejoin/internal/master/clustertest"
	"github.com/nodejoin/nodejoin/internal/master/join"
	"github.com/nodejoin/nodejoin/internal/problem"
	"github.com/nodejoin/nodejoin/internal/txn"
)

const hostKey = "etc/ssh/ssh_host_ed25519_key.pub"

func newCluster(t *testing.T) (*cluster.Cluster, string) {
	t.Helper()
	root := fixture.NewRoot(t) // sshd check and restart are /bin/true
	c := clustertest.New(t, clusterinit.InitOptions{Root: root, ClusterName: "c1.example.org", MasterNode: "master.example.org", MasterIP: "127.0.0.1"})
	return c, root
}

func read(t *testing.T, root, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func opts(c *cluster.Cluster) Options {
	return Options{Join: join.Options{Cluster: c, Timeout: 5 * time.Second}, Window: time.Hour, Parallel: 2}
}

// keyOf is the "type base64" of a public key line.
func keyOf(line string) string {
	f := strings.Fields(line)
	return f[0] + " " + f[1]
}

// TestWindow: a rotation gives the master new host keys and, until the
// window closes, both the old and the new are accepted (known_hosts and
// the keys node-add trusts for a recorded node); --finish closes it and
// only the new remain.
func TestWindow(t *testing.T) {
	c, root := newCluster(t)
	old := read(t, root, hostKey)
	o := opts(c)
	o.NewHostKeys = true
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Started || rep.Closed {
		t.Errorf("report %+v", rep)
	}
	now := read(t, root, hostKey)
	if keyOf(now) == keyOf(old) {
		t.Fatal("the master kept its host key")
	}
	backups, _ := filepath.Glob(filepath.Join(root, "etc/ssh/ssh_host_ed25519_key.backup-*"))
	if len(backups) != 1 {
		t.Errorf("backups of the old private key: %v", backups)
	}
	// known_hosts lists the new key only; the old is accepted through
	// the renewal state while the window is open.
	kh := read(t, root, "var/lib/ganeti/known_hosts")
	if strings.Contains(kh, keyOf(old)) || !strings.Contains(kh, "c1.example.org "+keyOf(now)) {
		t.Errorf("known_hosts during the window:\n%s", kh)
	}
	if w := c.WindowHostKeys(time.Now()); len(w) != 1 || w[0].Type+" "+w[0].Base64 != keyOf(old) {
		t.Errorf("window keys %v, want the old key", w)
	}
	if w := c.WindowHostKeys(rep.WindowEnd); len(w) != 0 {
		t.Errorf("window keys at its end: %v", w)
	}
	st, err := c.Renewal()
	if err != nil || st == nil || st.Phase != cluster.RenewNodes {
		t.Fatalf("state %+v, %v", st, err)
	}
	if strings.Contains(read(t, root, "var/lib/nodejoin/"+cluster.RenewalFile), "PRIVATE KEY") {
		t.Error("the state keeps the private key after the master took it")
	}
	fi, _ := os.Stat(filepath.Join(root, "var/lib/nodejoin", cluster.RenewalFile))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v", fi.Mode())
	}

	// A second start resumes the same rotation: no other key.
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if read(t, root, hostKey) != now {
		t.Error("a rerun made other keys")
	}

	o = opts(c)
	o.Finish = true
	rep, err = Run(context.Background(), o)
	if err != nil || !rep.Closed {
		t.Fatalf("finish: %+v, %v", rep, err)
	}
	kh = read(t, root, "var/lib/ganeti/known_hosts")
	if strings.Contains(kh, keyOf(old)) || !strings.Contains(kh, "c1.example.org "+keyOf(now)) {
		t.Errorf("known_hosts after the window:\n%s", kh)
	}
	if w := c.WindowHostKeys(time.Now()); len(w) != 0 {
		t.Errorf("old keys still accepted: %v", w)
	}
	if _, err := Run(context.Background(), o); problem.ExitCode(err) != problem.ExitUsage {
		t.Errorf("finish without a rotation: %v", err)
	}
}

// TestResumeAfterEachStep: a run killed after the state was recorded, or
// after the master took the keys but before that was recorded, is
// finished by the next run with the keys first made.
func TestResumeAfterEachStep(t *testing.T) {
	for _, step := range []string{"staged", "master installed"} {
		t.Run(step, func(t *testing.T) {
			c, root := newCluster(t)
			r, err := stage(c, time.Hour, what{hostKeys: true, hmac: true, certificate: true, rootKeys: true})
			if err != nil {
				t.Fatal(err)
			}
			if step == "master installed" {
				if err := installOnMaster(context.Background(), c, slog.New(slog.DiscardHandler), r); err != nil {
					t.Fatal(err)
				}
			}
			o := opts(c)
			o.Finish = true
			rep, err := Run(context.Background(), o)
			if err != nil || !rep.Closed {
				t.Fatalf("%+v, %v", rep, err)
			}
			if got := read(t, root, hostKey); got != r.NewHostKeys[0].Public {
				t.Errorf("master's key %q, want the staged %q", got, r.NewHostKeys[0].Public)
			}
			if read(t, root, "var/lib/ganeti/server.pem") != r.NewServer {
				t.Error("the master's server.pem is not the staged one")
			}
			if read(t, root, "root/.ssh/id_ed25519.pub") != r.NewRootKey.Public {
				t.Error("the master's root key is not the staged one")
			}
		})
	}
}

// TestFailedMasterRestart: when the master's sshd refuses the new keys,
// its old keys are put back and the rotation stays staged; a rerun after
// the fix finishes it.
func TestFailedMasterRestart(t *testing.T) {
	_, root := newCluster(t)
	old := read(t, root, hostKey)
	conf := read(t, root, "etc/nodejoin/node.json")
	bad := strings.Replace(conf, "\"sshd_check_command\": [\n    \"/bin/true\"", "\"sshd_check_command\": [\n    \"/bin/false\"", 1)
	if bad == conf {
		t.Fatalf("node.json is not as expected: %s", conf)
	}
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(root, "etc/nodejoin/node.json"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(bad)
	c2, err := cluster.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	o := opts(c2)
	o.NewHostKeys = true
	if _, err := Run(context.Background(), o); err == nil || problem.ExitCode(err) != problem.ExitFailed {
		t.Fatalf("err = %v", err)
	}
	if read(t, root, hostKey) != old {
		t.Error("the master's old key was not put back")
	}
	st, _ := c2.Renewal()
	if st == nil || st.Phase != cluster.RenewStaged {
		t.Fatalf("state %+v", st)
	}
	write(conf)
	c3, err := cluster.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), opts(c3)); err != nil {
		t.Fatal(err)
	}
	if got := read(t, root, hostKey); got != st.NewHostKeys[0].Public {
		t.Errorf("after the rerun the master has %q, want the staged key", got)
	}
}

// TestUnreachableNodeKeepsTheWindow: a recorded node that cannot be
// reached stays pending; the run fails (exit 1) and --finish does not
// close the window.
func TestUnreachableNodeKeepsTheWindow(t *testing.T) {
	c, root := newCluster(t)
	list := filepath.Join(root, "var/lib/ganeti/ssconf_node_list")
	if err := os.WriteFile(list, []byte("master.example.org\nnode1.invalid\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	o := opts(c)
	o.NewHostKeys, o.Finish = true, true
	rep, err := Run(context.Background(), o)
	if problem.ExitCode(err) != problem.ExitFailed {
		t.Fatalf("err = %v", err)
	}
	if rep.Closed || len(rep.Pending) != 1 || rep.Pending[0] != "node1.invalid" {
		t.Errorf("report %+v", rep)
	}
	if len(c.WindowHostKeys(time.Now())) == 0 {
		t.Error("the window closed with a node left on the old keys")
	}
}

// TestHMAC: --new-hmac-key alone gives the master a new hmac.key (mode
// kept, never left in the state once the master has it) and leaves the
// host keys and known_hosts alone.
func TestHMAC(t *testing.T) {
	c, root := newCluster(t)
	oldHMAC, oldKey := read(t, root, "var/lib/ganeti/hmac.key"), read(t, root, hostKey)
	oldKH := read(t, root, "var/lib/ganeti/known_hosts")
	o := opts(c)
	o.NewHMACKey = true
	rep, err := Run(context.Background(), o)
	if err != nil || !rep.Started || rep.Closed {
		t.Fatalf("%+v, %v", rep, err)
	}
	h := read(t, root, "var/lib/ganeti/hmac.key")
	if h == oldHMAC || len(strings.TrimSpace(h)) != 64 || !strings.HasSuffix(h, "\n") {
		t.Errorf("hmac.key %q after the rotation", h)
	}
	if strings.Contains(read(t, root, "var/lib/nodejoin/"+cluster.RenewalFile), strings.TrimSpace(h)) {
		t.Error("the state keeps the hmac key after the master took it")
	}
	if read(t, root, hostKey) != oldKey || read(t, root, "var/lib/ganeti/known_hosts") != oldKH {
		t.Error("an hmac rotation changed the host keys")
	}
	fi, _ := os.Stat(filepath.Join(root, "var/lib/ganeti/hmac.key"))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("hmac.key mode %v", fi.Mode())
	}
	o = opts(c)
	o.Finish = true
	if rep, err := Run(context.Background(), o); err != nil || !rep.Closed {
		t.Fatalf("finish: %+v, %v", rep, err)
	}
}

// TestCertificate: --new-cluster-certificate gives the master a new
// cluster certificate and a client certificate signed by its key; until
// the window closes the documents carry the proof by the old key (which
// verifies), the master's ssconf lists its old client certificate as
// bootstrap, and its node daemon client trusts and presents the old ones
// too; --finish leaves only the new. The state never keeps the new key
// once the master has it.
func TestCertificate(t *testing.T) {
	c, root := newCluster(t)
	oldServer, oldClient := c.Server, c.Client
	o := opts(c)
	o.NewClusterCertificate = true
	rep, err := Run(context.Background(), o)
	if err != nil || !rep.Started || rep.Closed {
		t.Fatalf("%+v, %v", rep, err)
	}
	c2, err := cluster.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if certs.SamePublicKey(c2.Server.Cert.PublicKey, oldServer.Cert.PublicKey) {
		t.Fatal("the master kept its cluster key")
	}
	if c2.Client.Cert.CheckSignatureFrom(c2.Server.Cert) != nil {
		t.Error("the master's client.pem is not signed by the new cluster key")
	}
	if c.Server.Cert.Equal(oldServer.Cert) {
		t.Error("the run's cluster still holds the old certificate")
	}
	state := read(t, root, "var/lib/nodejoin/"+cluster.RenewalFile)
	if strings.Contains(state, strings.Split(string(c2.Server.PEM), "-----BEGIN CERTIFICATE-----")[0]) {
		t.Error("the state keeps the new private key after the master took it")
	}
	for _, p := range []string{"var/lib/ganeti/server.pem", "var/lib/ganeti/client.pem"} {
		if fi, err := os.Stat(filepath.Join(root, p)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v", p, fi.Mode(), err)
		}
	}
	prep, err := c2.PrepareDoc()
	if err != nil {
		t.Fatal(err)
	}
	setup, err := c2.DaemonSetupDoc("node1.example.org", "192.0.2.9")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*joindoc.CertificateRenewal{prep.CertificateRenewal, setup.CertificateRenewal} {
		if r == nil {
			t.Fatal("a document without the renewal during the window")
		}
		prev, _ := certs.ParseCertificateOnly([]byte(r.PreviousCertificate))
		proof, err := certs.ParseCertificateOnly([]byte(r.Proof))
		if err != nil || prev == nil || !prev.Equal(oldServer.Cert) {
			t.Fatalf("renewal %+v: %v", r, err)
		}
		if err := certs.VerifyRenewalProof(oldServer.Cert, c2.Server.Cert, proof, "c1.example.org"); err != nil {
			t.Error(err)
		}
		if !r.WindowEnd.Equal(rep.WindowEnd) {
			t.Errorf("window end %v, want %v", r.WindowEnd, rep.WindowEnd)
		}
	}
	mcc := setup.Ssconf["master_candidates_certs"]
	if !strings.Contains(mcc, "bootstrap="+certs.Digest(oldClient.Cert)) || !strings.Contains(mcc, "master.example.org="+certs.Digest(c2.Client.Cert)) {
		t.Errorf("master_candidates_certs during the window: %q", mcc)
	}

	o = opts(c2)
	o.Finish = true
	if rep, err := Run(context.Background(), o); err != nil || !rep.Closed {
		t.Fatalf("finish: %+v, %v", rep, err)
	}
	setup, err = c2.DaemonSetupDoc("node1.example.org", "192.0.2.9")
	if err != nil {
		t.Fatal(err)
	}
	if setup.CertificateRenewal != nil || strings.Contains(setup.Ssconf["master_candidates_certs"], "bootstrap") {
		t.Errorf("after the window: renewal %+v, master_candidates_certs %q", setup.CertificateRenewal, setup.Ssconf["master_candidates_certs"])
	}
}

// TestRootKeys: --new-root-keys gives the master a new root key pair (the
// old kept as a backup) whose public key the documents authorize from
// then on; during the window the master offers the new key and the old
// one, kept in the state directory (0600); the window's end removes it,
// and the master offers its default keys again.
func TestRootKeys(t *testing.T) {
	c, root := newCluster(t)
	const rootKey = "root/.ssh/id_ed25519"
	oldPub, oldPriv := read(t, root, rootKey+".pub"), read(t, root, rootKey)
	o := opts(c)
	o.NewRootKeys = true
	rep, err := Run(context.Background(), o)
	if err != nil || !rep.Started || rep.Closed {
		t.Fatalf("%+v, %v", rep, err)
	}
	newPub := read(t, root, rootKey+".pub")
	if keyOf(newPub) == keyOf(oldPub) {
		t.Fatal("the master kept its root key")
	}
	if backups, _ := filepath.Glob(filepath.Join(root, rootKey+".backup-*")); len(backups) != 1 {
		t.Errorf("backups of the old root key: %v", backups)
	}
	oldFile := filepath.Join(root, "var/lib/nodejoin", cluster.OldRootKeyFile)
	if b, err := os.ReadFile(oldFile); err != nil || string(b) != oldPriv {
		t.Errorf("the old root key offered in the window: %v", err)
	}
	if fi, err := os.Stat(oldFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, %v", oldFile, fi.Mode(), err)
	}
	if ids := c.RootIdentities(); len(ids) != 2 || ids[0] != filepath.Join(root, rootKey) || ids[1] != oldFile {
		t.Errorf("keys offered in the window: %v", ids)
	}
	prep, err := c.PrepareDoc()
	if err != nil {
		t.Fatal(err)
	}
	if ks := prep.AuthorizedKeys["master.example.org"]; len(ks) != 1 || keyOf(ks[0]) != keyOf(newPub) {
		t.Errorf("the documents authorize %v, want the new key", ks)
	}
	if state := read(t, root, "var/lib/nodejoin/"+cluster.RenewalFile); strings.Contains(state, "PRIVATE KEY") {
		t.Error("the state keeps a private key after the master took it")
	}
	// A rerun of the install (killed before the phase was recorded) keeps
	// the old key where it is: the master's file is the new key by then.
	r, _ := c.Renewal()
	r.Phase, r.NewRootKey.Private = cluster.RenewStaged, read(t, root, rootKey)
	if err := c.SaveRenewal(r); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), opts(c)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(oldFile); string(b) != oldPriv {
		t.Error("a rerun of the install put the new key where the old one is offered from")
	}

	o = opts(c)
	o.Finish = true
	if rep, err := Run(context.Background(), o); err != nil || !rep.Closed {
		t.Fatalf("finish: %+v, %v", rep, err)
	}
	if _, err := os.Stat(oldFile); !os.IsNotExist(err) {
		t.Errorf("the old root key is still there after the window: %v", err)
	}
	if ids := c.RootIdentities(); ids != nil {
		t.Errorf("keys offered after the window: %v", ids)
	}
}

// TestOldRootKeyKeptWhileANodeIsUnreachable: the window of a root key
// rotation closes only once every recorded node no longer authorizes the
// old key; a node ssh-update cannot reach keeps it open (exit 1), with
// the old key still offered.
func TestOldRootKeyKeptWhileANodeIsUnreachable(t *testing.T) {
	c, root := newCluster(t)
	o := opts(c)
	o.NewRootKeys = true
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(root, "var/lib/ganeti/ssconf_node_list")
	if err := os.WriteFile(list, []byte("master.example.org\nnode1.invalid\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := c.MarkRenewed("node1.invalid"); err != nil { // joined again, say, by node-add
		t.Fatal(err)
	}
	o = opts(c)
	o.Finish = true
	rep, err := Run(context.Background(), o)
	if problem.ExitCode(err) != problem.ExitFailed || !strings.Contains(err.Error(), "1 nodes still authorize the master's old root key: [node1.invalid]") {
		t.Fatalf("err = %v", err)
	}
	if rep == nil || rep.Closed {
		t.Errorf("report %+v", rep)
	}
	if r, _ := c.Renewal(); r == nil || len(r.RootKeyRemoved) != 0 {
		t.Errorf("state %+v", r)
	}
	if len(c.RootIdentities()) != 2 {
		t.Error("the old root key is no longer offered")
	}
}

// The master takes its new keys under the lock a node's record holds: a
// node-add recording a node meanwhile would otherwise write back
// ganeti_pub_keys with the master's old root key, and every later join
// would authorize only the key the rotation's end removes.
func TestInstallHoldsTheMasterLock(t *testing.T) {
	c, root := newCluster(t)
	r, err := stage(c, time.Hour, what{rootKeys: true})
	if err != nil {
		t.Fatal(err)
	}
	before := read(t, root, "var/lib/ganeti/ganeti_pub_keys")
	lock, err := txn.Lock(context.Background(), nil, c.Config.Path(filepath.Join(c.Config.LockDir, "nodejoin-master.lock")))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- installOnMaster(context.Background(), c, slog.New(slog.DiscardHandler), r) }()
	select {
	case err := <-done:
		lock.Close()
		t.Fatalf("the master took its new keys while the master's lock was held elsewhere (%v)", err)
	case <-time.After(500 * time.Millisecond):
	}
	if got := read(t, root, "var/lib/ganeti/ganeti_pub_keys"); got != before {
		t.Errorf("ganeti_pub_keys changed while the lock was held:\n%s", got)
	}
	lock.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := read(t, root, "var/lib/ganeti/ganeti_pub_keys"); !strings.Contains(got, keyOf(r.NewRootKey.Public)) {
		t.Errorf("ganeti_pub_keys after the install lacks the new root key:\n%s", got)
	}
}
