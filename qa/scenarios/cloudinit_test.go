package scenarios

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/qa/clusterlab"
	"github.com/nodejoin/nodejoin/qa/harness"
)

// ciConfig is the lab's /etc/cloud/cloud.cfg.d drop-in: the NoCloud seed
// directory only, no network configuration (the lab's is the harness's),
// and off what a namespace host cannot do: grow or resize a root device it
// does not have, generate locales into the machine's read-only /usr.
// Debian's own module lists and order are kept.
const ciConfig = `datasource_list: [NoCloud]
network: {config: disabled}
growpart: {mode: "off"}
resize_rootfs: false
locale: false
`

// The node programs the user-data installs from join-service.
var nodePrograms = joinapi.NodePrograms

// Scenario: a fresh node runs render-cloud-config's user-data through
// Debian's cloud-init 22.4.2, all of its stages (init --local, init,
// modules --mode config, modules --mode final) on a NoCloud seed, with no
// node program installed: it downloads them from the master's
// join-service (pinned), joins, and the master records it from node-join's
// authenticated report. Debian's cloud-init schema --config-file accepts
// the user-data first. While cloud-init runs, the token is watched
// (inotify on the node's /run, a poll of its modes, and an unprivileged
// reader that tries to open it): never readable by others, gone after, and
// the secret in no file others can read, nor an operator's private file.
func TestCloudInitFirstBoot(t *testing.T) {
	harness.Require(t)
	for _, p := range []string{"cloud-init", "curl", "setpriv"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("qa: needs %s (tools/install-deps.sh installs it)", p)
		}
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	l := clusterlab.New(t, harness.Options{Nodes: 1})
	node := l.Nodes[0]
	must(t, "cluster-init", l.Init(ctx))
	files := l.Master.Path("/var/lib/nodejoin/node-files")
	if err := os.MkdirAll(files, 0o755); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, p := range nodePrograms {
		if out, err := exec.Command("cp", filepath.Join(l.Bin, p), files).CombinedOutput(); err != nil {
			t.Fatalf("cp %s: %v %s", p, err, out)
		}
		want[p] = fileSum(t, filepath.Join(l.Bin, p))
		// The node starts without them: the user-data must install them.
		if err := os.Remove(node.Path("/usr/local/sbin/" + p)); err != nil {
			t.Fatal(err)
		}
	}
	serveJoinService(t, ctx, l.Master)
	uuid, bootParam := slotAdd(t, ctx, l.Master, `{"node_name": "`+node.Name+`", "ttl": "10m"}`)
	secret := strings.Split(strings.TrimPrefix(bootParam, joinapi.BootParamKey+"="+uuid+":"), ":")[2]

	// An operator's private file: staged in the closed directory too.
	private := "QA-PRIVATE-" + uuid
	in, _ := json.Marshal(map[string]any{"token": bootParam, "install": map[string]string{"from": "join-service"},
		"timeout": "2m",
		"write_files": []map[string]any{{"path": "/etc/motd", "content": "a cluster node\n"},
			{"path": "/etc/nodejoin-qa/site.key", "content": private + "\n", "permissions": "0600"}},
		"scripts": map[string]any{"boot": [][]string{{"touch", "/run/qa-boot"}},
			"after_join": [][]string{{"sh", "-c", "test ! -e /run/nodejoin-cloud && touch /root/qa-after-join"}}}})
	r := must(t, "render-cloud-config", clusterlab.Run(ctx, l.Master, in, "render-cloud-config"))
	userData := []byte(r.Stdout)
	if r.Stderr != "" {
		t.Errorf("render-cloud-config warned:\n%s", r.Stderr)
	}
	// Debian's own schema check, as the machine itself has it.
	udFile := filepath.Join(t.TempDir(), "user-data")
	if err := os.WriteFile(udFile, userData, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(ctx, "cloud-init", "schema", "--config-file", udFile).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "Valid cloud-config") {
		t.Fatalf("cloud-init schema --config-file: %v\n%s", err, out)
	}

	seedNoCloud(t, ctx, node, userData)
	w := watchToken(t, ctx, node)
	stages := runStages(t, ctx, node)
	obs := w.stop()
	t.Logf("%s", strings.Join(stages, "\n"))
	checkResult(t, ctx, node)

	// The token: seen while it existed, never readable by others, gone.
	if obs.seen == 0 {
		t.Errorf("the watch never saw %s (events: %q)", "/run/nodejoin-cloud/join.token", obs.events)
	}
	if n := len(obs.open); n > 0 {
		t.Errorf("the token was open to others %d times, first: %s", n, strings.Join(obs.open[:min(n, 5)], "; "))
	}
	if obs.leaked != "" {
		t.Errorf("an unprivileged reader read the token: %q", obs.leaked)
	}
	// The inotify events show cloud-init's write_files as it is: create,
	// write, close, and the chmod (attrib) last; the polls may catch the
	// token at its umask's mode before the chmod, inside the closed directory.
	t.Logf("token watch: %d polls saw the token (modes %v); inotify: %s", obs.seen, obs.modes, strings.Join(obs.events, ", "))
	if _, err := os.Lstat(fmt.Sprintf("/proc/%d/root/run/nodejoin-cloud", node.InitPID())); !os.IsNotExist(err) {
		t.Errorf("/run/nodejoin-cloud is still there after the run (%v)", err)
	}
	for _, f := range worldReadableWith(t, node, secret) {
		t.Errorf("%s: readable by others and holds the secret", f)
	}
	for _, f := range worldReadableWith(t, node, private) {
		t.Errorf("%s: readable by others and holds the operator's private file", f)
	}
	if fi, err := os.Stat(fmt.Sprintf("/proc/%d/root/etc/nodejoin-qa/site.key", node.InitPID())); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the operator's private file: %v %v, want 0600", fi, err)
	}

	// Installed from join-service, as pinned; joined; the operator's steps ran.
	for _, p := range nodePrograms {
		if got := fileSum(t, node.Path("/usr/local/sbin/"+p)); got != want[p] {
			t.Errorf("%s: /usr/local/sbin/%s has sha256 %s, want join-service's %s", node.Name, p, got, want[p])
		}
	}
	for _, f := range []string{"/run/qa-boot", "/root/qa-after-join", "/etc/motd"} {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/root%s", node.InitPID(), f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	show := must(t, "slot show", clusterlab.Run(ctx, l.Master, nil, "join-service", "slot", "show", uuid))
	var slot struct {
		State  string
		Report struct{ Status string }
	}
	if err := json.Unmarshal([]byte(show.Stdout), &slot); err != nil || slot.State != "spent" || slot.Report.Status != joinapi.StatusJoined {
		t.Errorf("slot after the first boot: %v\n%s", err, show.Stdout)
	}
	audit, err := os.ReadFile(l.Master.Path("/var/log/nodejoin/join-service.audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []string{`"event":"fetch","slot":"` + uuid + `"`, `"event":"report","slot":"` + uuid + `"`, `"event":"record","slot":"` + uuid + `"`} {
		if !strings.Contains(string(audit), ev) {
			t.Errorf("the audit log has no %s:\n%s", ev, audit)
		}
	}
	if bytes.Contains(audit, []byte(secret)) {
		t.Error("the audit log holds the secret")
	}
	if ss, err := clusterlab.Ssconf(l.Master); err != nil || !strings.Contains(ss["node_list"], node.Name) {
		t.Errorf("the master's ssconf_node_list %q (%v) lacks %s", ss["node_list"], err, node.Name)
	}
	if v, err := l.NodedVersion(ctx, node); err != nil {
		t.Errorf("%s's noded: %v", node.Name, err)
	} else {
		t.Logf("%s's noded after cloud-init: %s", node.Name, v)
	}
}

// seedNoCloud gives node a private /etc and /var/lib, a NoCloud seed
// directory holding userData (0600, as cloud-init keeps it) and the lab's
// cloud.cfg.d drop-in.
func seedNoCloud(t *testing.T, ctx context.Context, node *harness.Host, userData []byte) {
	t.Helper()
	if err := clusterlab.PrivateRoot(ctx, node); err != nil {
		t.Fatal(err)
	}
	must(t, "seeding", clusterlab.Run(ctx, node, nil, "sh", "-c", `set -eu
		rm -rf /var/lib/cloud
		install -d -m 0700 /var/lib/cloud/seed/nocloud
		printf 'instance-id: qa-`+node.Name+`\nlocal-hostname: `+node.Name+`\n' > /var/lib/cloud/seed/nocloud/meta-data
		install -d /etc/cloud/cloud.cfg.d`))
	root := fmt.Sprintf("/proc/%d/root", node.InitPID())
	if err := os.WriteFile(root+"/etc/cloud/cloud.cfg.d/99-nodejoin-qa.cfg", []byte(ciConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(root+"/var/lib/cloud/seed/nocloud/user-data", userData, 0o600); err != nil {
		t.Fatal(err)
	}
}

// runStages runs cloud-init's four stages of a first boot on node, as its
// systemd units would, and says how each went.
func runStages(t *testing.T, ctx context.Context, node *harness.Host) []string {
	t.Helper()
	var stages []string
	for _, stage := range [][]string{{"init", "--local"}, {"init"}, {"modules", "--mode", "config"}, {"modules", "--mode", "final"}} {
		r := clusterlab.Run(ctx, node, nil, append([]string{"cloud-init"}, stage...)...)
		stages = append(stages, fmt.Sprintf("cloud-init %s: exit %d in %v", strings.Join(stage, " "), r.Code, r.Took.Round(time.Millisecond)))
		if !r.OK() {
			t.Errorf("cloud-init %s: %s", strings.Join(stage, " "), r)
		}
	}
	return stages
}

// checkResult fails the test if cloud-init's result.json lists errors.
func checkResult(t *testing.T, ctx context.Context, node *harness.Host) {
	t.Helper()
	logs := must(t, "cloud-init's logs", clusterlab.Run(ctx, node, nil, "sh", "-c",
		"cat /run/cloud-init/result.json; tail -n 30 /var/log/cloud-init-output.log"))
	var result struct {
		V1 struct {
			Errors []string `json:"errors"`
		} `json:"v1"`
	}
	if err := json.NewDecoder(strings.NewReader(logs.Stdout)).Decode(&result); err != nil || len(result.V1.Errors) > 0 {
		t.Errorf("cloud-init's result.json: %v %q\n%s", err, result.V1.Errors, logs.Stdout)
	}
}

func fileSum(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// tokenWatch is what watchToken saw.
type tokenWatch struct {
	seen   int            // polls that found the token
	modes  map[string]int // the token's modes as the polls saw them
	open   []string       // polls or events that found it open to others
	events []string       // inotify events in /run and /run/nodejoin-cloud
	leaked string         // what the unprivileged reader read
}

type watcher struct {
	stop func() tokenWatch
}

// watchToken watches the node's /run/nodejoin-cloud from outside (through
// /proc/PID/root: the host's own mount namespace) with inotify and a tight
// poll of the directory's and the file's modes, and runs a reader as
// nobody inside the node that tries to read the token all along.
func watchToken(t *testing.T, ctx context.Context, h *harness.Host) watcher {
	t.Helper()
	base := fmt.Sprintf("/proc/%d/root/run", h.InitPID())
	dir, tok := base+"/nodejoin-cloud", base+"/nodejoin-cloud/join.token"
	var mu sync.Mutex
	w := tokenWatch{modes: map[string]int{}}
	done := make(chan struct{})
	var wg sync.WaitGroup

	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.InotifyAddWatch(fd, base, unix.IN_CREATE|unix.IN_DELETE|unix.IN_ATTRIB); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		ds, derr := os.Lstat(dir)
		fs, ferr := os.Lstat(tok)
		if ferr != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		w.seen++
		w.modes[fs.Mode().Perm().String()]++
		if derr != nil || ds.Mode().Perm()&0o077 != 0 || ds.Sys().(*syscall.Stat_t).Uid != 0 {
			w.open = append(w.open, fmt.Sprintf("%s: directory %v, token %v", when, modeOf(ds), fs.Mode()))
		}
	}
	wg.Add(2)
	go func() { // inotify
		defer wg.Done()
		defer unix.Close(fd)
		buf := make([]byte, 64<<10)
		dirWatched := false
		for {
			select {
			case <-done:
				return
			default:
			}
			if !dirWatched {
				if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_ATTRIB|unix.IN_MODIFY|unix.IN_CLOSE_WRITE|unix.IN_DELETE); err == nil {
					dirWatched = true
				}
			}
			n, err := unix.Read(fd, buf)
			if err != nil || n <= 0 {
				time.Sleep(200 * time.Microsecond)
				continue
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
				if name == "nodejoin-cloud" || name == "join.token" {
					mu.Lock()
					w.events = append(w.events, fmt.Sprintf("%s:%s", name, maskName(ev.Mask)))
					mu.Unlock()
				}
				check("on " + name + " " + maskName(ev.Mask))
				off += unix.SizeofInotifyEvent + int(ev.Len)
			}
		}
	}()
	go func() { // poll
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			check("poll")
			time.Sleep(100 * time.Microsecond)
		}
	}()
	// The reader as nobody, in the node: it prints whatever it can read.
	rctx, rcancel := context.WithCancel(ctx)
	reader := h.Command(rctx, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
		"sh", "-c", "while :; do cat /run/nodejoin-cloud/join.token 2>/dev/null; done")
	var leaked bytes.Buffer
	reader.Stdout = &leaked
	reader.WaitDelay = 2 * time.Second
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	return watcher{stop: func() tokenWatch {
		close(done)
		wg.Wait()
		rcancel()
		_ = reader.Wait()
		mu.Lock()
		defer mu.Unlock()
		w.leaked = leaked.String()
		return w
	}}
}

func modeOf(fi fs.FileInfo) string {
	if fi == nil {
		return "missing"
	}
	return fmt.Sprintf("%v uid %d", fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid)
}

func maskName(m uint32) string {
	var out []string
	for bit, name := range map[uint32]string{unix.IN_CREATE: "create", unix.IN_ATTRIB: "attrib", unix.IN_MODIFY: "modify",
		unix.IN_CLOSE_WRITE: "close_write", unix.IN_DELETE: "delete"} {
		if m&bit != 0 {
			out = append(out, name)
		}
	}
	return strings.Join(out, "|")
}

// worldReadableWith lists the node's files that others can read (the file
// o+r, every directory above it o+x) and that hold s: in /run, /var/log,
// /var/lib/cloud, /etc, /tmp and /var/tmp.
func worldReadableWith(t *testing.T, h *harness.Host, s string) []string {
	t.Helper()
	root := fmt.Sprintf("/proc/%d/root", h.InitPID())
	var out []string
	for _, top := range []string{"/run", "/var/log", "/var/lib/cloud", "/etc", "/tmp", "/var/tmp"} {
		_ = filepath.WalkDir(root+top, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return nil
			}
			if d.IsDir() {
				if fi.Mode().Perm()&0o001 == 0 {
					return filepath.SkipDir // others cannot enter
				}
				return nil
			}
			if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o004 == 0 || fi.Size() > 64<<20 {
				return nil
			}
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(s)) {
				out = append(out, strings.TrimPrefix(p, root))
			}
			return nil
		})
	}
	return out
}
