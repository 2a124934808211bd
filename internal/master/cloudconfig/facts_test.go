package cloudconfig

import (
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// everything is a document with every key that renders a file, a command or
// a URL.
const everything = `{"token": "TOKEN", "node_name": "node1.example.org", "timeout": "15m",
 "install": {"from": "join-service"},
 "packages": ["chrony"], "tasks": ["ssh-server"], "updates": true,
 "apt_sources": {"extra": {"source": "deb [signed-by=$KEY_FILE] https://apt.example.org/extra bookworm main",
                           "key": "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ\n-----END PGP PUBLIC KEY BLOCK-----\n"}},
 "write_files": [{"path": "/etc/motd", "content": "node\n"}, {"path": "/etc/late", "content": "x", "defer": true}],
 "scripts": {"boot": [["echo", "boot"]], "before_join": [["echo", "before"]], "after_join": [["echo", "after"]]},
 "config_exec": ["/usr/bin/puppet", "apply", "-"],
 "phone_home": {"url": "https://inventory.example.org/up"}}`

func withConfig() Slot {
	s := freeSlot()
	c := "node { }\n"
	s.Config, s.ConfigRevision = &c, 1
	return s
}

func parse(t *testing.T, ud []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(ud, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// walkStrings walks v and calls f with each string and where it is.
func walkStrings(v any, where string, f func(where, s string)) {
	switch t := v.(type) {
	case string:
		f(where, t)
	case []any:
		for i, e := range t {
			walkStrings(e, where+"/"+strconv.Itoa(i), f)
		}
	case map[string]any:
		for k, e := range t {
			walkStrings(e, where+"/"+k, f)
		}
	}
}

func argv(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, a := range l {
		s, _ := a.(string)
		out = append(out, s)
	}
	return out
}

// cloud-init's write_files is not atomic: util.write_file opens the file
// with the process's umask, writes it, and chmods it only then. The token
// must therefore land in a directory that is closed to others before
// write_files runs: the first bootcmd makes it 0700, root's, and bootcmd
// runs before write_files in the init stage. The directory is removed
// after node-join, and however runcmd's script ends.
func TestTokenLandsInClosedDirectory(t *testing.T) {
	r, err := render(t, everything, withConfig())
	if err != nil {
		t.Fatal(err)
	}
	ud := parse(t, r.UserData)

	boot, _ := ud["bootcmd"].([]any)
	if len(boot) == 0 || !slices.Equal(argv(boot[0]), []string{"install", "-d", "-m", "0700", "-o", "root", "-g", "root", stageDir}) {
		t.Errorf("the first bootcmd is %q, want the 0700 directory %s made", argv(boot[0]), stageDir)
	}
	var holders []map[string]any
	files, _ := ud["write_files"].([]any)
	for _, f := range files {
		m, _ := f.(map[string]any)
		if c, _ := m["content"].(string); strings.Contains(c, testSecret) {
			holders = append(holders, m)
		}
	}
	if len(holders) != 1 {
		t.Fatalf("%d write_files entries hold the secret, want 1", len(holders))
	}
	tf := holders[0]
	if p, _ := tf["path"].(string); path.Dir(p) != stageDir {
		t.Errorf("the token is written to %s, not directly inside %s", p, stageDir)
	}
	if tf["permissions"] != "0600" || tf["owner"] != "root:root" {
		t.Errorf("the token file is %v %v, want 0600 root:root", tf["permissions"], tf["owner"])
	}
	if d, _ := tf["defer"].(bool); d {
		t.Error("the token file is deferred to the final stage")
	}
	run, _ := ud["runcmd"].([]any)
	if len(run) < 2 || run[1] != "trap 'rm -rf "+stageDir+"' EXIT" || run[0] != "set -eu" {
		t.Errorf("runcmd does not start with set -eu and the trap that removes %s: %v", stageDir, run[:2])
	}
	joined := -1
	for i, c := range run {
		if a := argv(c); len(a) > 0 && strings.HasSuffix(a[0], "/node-join") {
			joined = i
		}
	}
	if joined < 0 || joined+1 >= len(run) || !slices.Equal(argv(run[joined+1]), []string{"rm", "-rf", stageDir}) {
		t.Errorf("node-join (runcmd %d) is not followed by rm -rf %s", joined, stageDir)
	}

	// The order the above relies on is Debian's: bootcmd before
	// write-files in the init stage.
	cfg, err := os.ReadFile("/etc/cloud/cloud.cfg")
	if os.IsNotExist(err) {
		t.Skip("no /etc/cloud/cloud.cfg: cloud-init's module order not checked here")
	}
	if err != nil {
		t.Fatal(err)
	}
	var cc struct {
		Init []string `yaml:"cloud_init_modules"`
	}
	if err := yaml.Unmarshal(cfg, &cc); err != nil {
		t.Fatal(err)
	}
	b, w := slices.Index(cc.Init, "bootcmd"), slices.Index(cc.Init, "write-files")
	if b < 0 || w < 0 || b > w {
		t.Errorf("cloud.cfg's cloud_init_modules run bootcmd at %d and write-files at %d: the directory would not be closed first", b, w)
	}
}

// /var/log/cloud-init.log is world-readable and records every URL cloud-init
// reads or posts to (and runcmd's script and argv are not secret either):
// the secret appears in the user-data exactly once, as the token file's
// content, and in no URL, command or other value.
func TestNoSecretInAnyURL(t *testing.T) {
	for _, doc := range []string{everything,
		strings.Replace(everything, `{"from": "join-service"}`, `{"from": "apt", "source": "deb https://apt.example.org/nj bookworm main"}`, 1)} {
		r, err := render(t, doc, withConfig())
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(r.UserData), testSecret); n != 1 {
			t.Errorf("the user-data holds the secret %d times, want once", n)
		}
		urls := 0
		walkStrings(parse(t, r.UserData), "", func(where, s string) {
			if strings.Contains(s, "://") {
				urls++
				if strings.Contains(s, testSecret) {
					t.Errorf("%s: a URL holds the secret", where)
				}
			}
			if strings.Contains(s, testSecret) && !strings.HasPrefix(where, "/write_files/") {
				t.Errorf("%s holds the secret", where)
			}
		})
		if urls < 3 {
			t.Errorf("only %d URLs rendered: the test does not cover them", urls)
		}
	}
}

// The same fact for the operator's private files (permissions without o+r):
// they are staged in the closed directory, 0600, and install(1) puts them
// in place (created 0600, then chowned and chmodded), before the join.
func TestPrivateFilesStagedInClosedDirectory(t *testing.T) {
	r := mustRender(t, `{"token": "TOKEN", "install": {"from": "image"}, "write_files": [
		{"path": "/etc/public", "content": "PUBLIC"},
		{"path": "/etc/krb5.keytab", "content": "KEYTAB", "permissions": "0600"},
		{"path": "/etc/app/key", "content": "APPKEY", "owner": "app:adm", "permissions": "0640"},
		{"path": "/etc/app/k2", "content": "K2", "owner": "app", "permissions": "600"}]}`)
	ud := parse(t, r.UserData)
	files, _ := ud["write_files"].([]any)
	at := map[string]map[string]any{}
	for _, f := range files {
		m, _ := f.(map[string]any)
		c, _ := m["content"].(string)
		at[c] = m
	}
	if p := at["PUBLIC"]["path"]; p != "/etc/public" {
		t.Errorf("a public file is written to %v, want /etc/public", p)
	}
	for _, c := range []string{"KEYTAB", "APPKEY", "K2"} {
		m := at[c]
		if p, _ := m["path"].(string); !strings.HasPrefix(p, stageDir+"/files/") || m["permissions"] != "0600" || m["owner"] != "root:root" {
			t.Errorf("private content %s is written to %v %v %v, want 0600 root:root in %s/files", c, m["path"], m["permissions"], m["owner"], stageDir)
		}
	}
	run, _ := ud["runcmd"].([]any)
	want := [][]string{
		{"install", "-D", "-m", "0600", "-o", "root", "-g", "root", stageDir + "/files/1", "/etc/krb5.keytab"},
		{"install", "-D", "-m", "0640", "-o", "app", "-g", "adm", stageDir + "/files/2", "/etc/app/key"},
		{"install", "-D", "-m", "600", "-o", "app", "-g", "root", stageDir + "/files/3", "/etc/app/k2"},
	}
	for i, w := range want {
		if got := argv(run[2+i]); !slices.Equal(got, w) {
			t.Errorf("runcmd %d is %q, want %q", 2+i, got, w)
		}
	}
	if len(r.Warnings) != 0 {
		t.Errorf("warnings %q", r.Warnings)
	}
}

// The callback option: callback-setup's document, which holds the callback
// key's private half, is staged in the closed directory like the token and
// fed to callback-setup before node-join; a join-service install fetches
// callback-setup too, and is refused when join-service does not serve it.
func TestCallbackStagedInClosedDirectory(t *testing.T) {
	doc := `{"token": "TOKEN", "install": {"from": "join-service"}, "callback": {"master_host": "10.0.0.1",
		"master_host_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMasterKey master"], "callback_user": "cb", "remote_port": 22001,
		"key": {"private": "-----BEGIN OPENSSH PRIVATE KEY-----\nCALLBACKPRIVATE\n-----END OPENSSH PRIVATE KEY-----\n", "public": "ssh-ed25519 AAAA cb"}}}`
	if _, err := render(t, doc, freeSlot()); err == nil || !strings.Contains(err.Error(), "/callback: join-service serves no callback-setup") {
		t.Errorf("without callback-setup served: %v", err)
	}
	in, tok, err := Decode(strings.NewReader(strings.ReplaceAll(doc, "TOKEN", testToken())))
	if err != nil {
		t.Fatal(err)
	}
	files := append(append([]NodeFile(nil), testFiles...), NodeFile{Name: "callback-setup", SHA256: strings.Repeat("c", 64)})
	r, err := Render(in, tok, Facts{Slot: freeSlot(), Files: files})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(r.UserData), "CALLBACKPRIVATE"); n != 1 {
		t.Fatalf("the callback key appears %d times", n)
	}
	ud := parse(t, r.UserData)
	fl, _ := ud["write_files"].([]any)
	for _, f := range fl {
		m, _ := f.(map[string]any)
		if c, _ := m["content"].(string); strings.Contains(c, "CALLBACKPRIVATE") &&
			(m["path"] != stageDir+"/callback.json" || m["permissions"] != "0600") {
			t.Errorf("the callback document is written to %v %v", m["path"], m["permissions"])
		}
	}
	run, _ := ud["runcmd"].([]any)
	cb, join := -1, -1
	for i, c := range run {
		if c == binDir+"/callback-setup < "+stageDir+"/callback.json" {
			cb = i
		}
		if a := argv(c); len(a) > 0 && a[0] == binDir+"/node-join" {
			join = i
		}
	}
	if cb < 0 || join < 0 || cb > join {
		t.Errorf("callback-setup at runcmd %d, node-join at %d: want callback-setup first", cb, join)
	}
	if !strings.Contains(string(r.UserData), "/run/nodejoin-cloud/callback-setup\n") {
		t.Errorf("callback-setup is not among the downloads:\n%s", r.UserData)
	}
	if len(r.Warnings) != 1 || !strings.HasPrefix(r.Warnings[0], "callback: the callback key's private half travels in the user-data") {
		t.Errorf("warnings %q", r.Warnings)
	}
}
