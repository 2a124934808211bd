package cloudconfig

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodejoin/nodejoin/internal/problem"
)

var update = flag.Bool("update", false, "rewrite testdata/samples/*.yaml")

// Each sample input renders to its golden user-data, which Debian's own
// cloud-init schema --config-file accepts where cloud-init is installed.
func TestSamples(t *testing.T) {
	ins, err := filepath.Glob("testdata/samples/*.json")
	if err != nil || len(ins) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	ci, ciErr := exec.LookPath("cloud-init")
	for _, in := range ins {
		t.Run(filepath.Base(in), func(t *testing.T) {
			doc, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			r, err := render(t, string(doc), withConfig())
			if err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(in, ".json") + ".yaml"
			if *update {
				if err := os.WriteFile(golden, r.UserData, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(r.UserData, want) {
				t.Errorf("the user-data differs from %s (go test -update rewrites it):\n%s", golden, r.UserData)
			}
			if ciErr != nil {
				t.Logf("no cloud-init on the PATH: %s not checked by cloud-init schema", golden)
				return
			}
			out, err := exec.Command(ci, "schema", "--config-file", golden).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Valid cloud-config: "+golden) {
				t.Errorf("cloud-init schema --config-file %s: %v\n%s", golden, err, out)
			}
		})
	}
}

// phone_home always has tries: cloud-init 22.2 failed without it
// (canonical/cloud-init#3985).
func TestPhoneHomeTries(t *testing.T) {
	for doc, want := range map[string]string{
		`{"token": "TOKEN", "install": {"from": "image"}, "phone_home": {"url": "https://i.example.org/"}}`:             "  tries: 10\n",
		`{"token": "TOKEN", "install": {"from": "image"}, "phone_home": {"url": "https://i.example.org/", "tries": 3}}`: "  tries: 3\n",
	} {
		r := mustRender(t, doc)
		if !strings.Contains(string(r.UserData), "phone_home:\n") || !strings.Contains(string(r.UserData), want) {
			t.Errorf("phone_home without %q:\n%s", want, r.UserData)
		}
	}
	r := mustRender(t, `{"token": "TOKEN", "install": {"from": "image"}}`)
	if strings.Contains(string(r.UserData), "phone_home") {
		t.Errorf("phone_home rendered unasked:\n%s", r.UserData)
	}
}

// Host keys are generated on the node unless given, and given keys come
// with a warning.
func TestHostKeys(t *testing.T) {
	r := mustRender(t, `{"token": "TOKEN", "install": {"from": "image"}}`)
	if !strings.Contains(string(r.UserData), "ssh_deletekeys: true\nssh_genkeytypes:\n  - ed25519\n") || strings.Contains(string(r.UserData), "ssh_keys") || len(r.Warnings) != 0 {
		t.Errorf("default host keys:\n%s\n%q", r.UserData, r.Warnings)
	}
	r = mustRender(t, `{"token": "TOKEN", "install": {"from": "image"}, "ssh_host_keys": {"ed25519": {
		"private": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
		"public": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKey node"}}}`)
	if !strings.Contains(string(r.UserData), "ssh_keys:\n  ed25519_private: |\n    -----BEGIN OPENSSH PRIVATE KEY-----\n") || strings.Contains(string(r.UserData), "ssh_genkeytypes") {
		t.Errorf("given host keys:\n%s", r.UserData)
	}
	if len(r.Warnings) != 1 || !strings.HasPrefix(r.Warnings[0], "ssh_host_keys: the private host keys (ed25519) travel in the user-data: ") {
		t.Errorf("warnings %q", r.Warnings)
	}
}

func TestRefused(t *testing.T) {
	big := strings.Repeat("x", MaxUserData)
	for _, tc := range []struct {
		name, doc string
		slot      Slot
		want      string
	}{
		{"too large", `{"token": "TOKEN", "install": {"from": "image"}, "write_files": [{"path": "/etc/big", "content": "` + big + `"}]}`, freeSlot(),
			"/: the user-data would be 66376 bytes, more than 65536 (64 KiB)"},
		{"spent", `{"token": "TOKEN", "install": {"from": "image"}}`, Slot{UUID: testUUID, State: "spent", Used: 2, MaxUses: 2},
			"/token: slot " + testUUID + " is spent: its secret has no use left (used 2 of 2)"},
		{"another slot", `{"token": "TOKEN", "install": {"from": "image"}}`, Slot{UUID: "6b0e8a52-35f1-4c8e-a1d2-6f6e2b7d9c02"},
			"/token: join-service answered for slot 6b0e8a52-35f1-4c8e-a1d2-6f6e2b7d9c02, not the token's " + testUUID},
		{"another node", `{"token": "TOKEN", "install": {"from": "image"}, "node_name": "b.example.org"}`, Slot{UUID: testUUID, NodeName: "a.example.org"},
			`/node_name: "b.example.org" is not slot ` + testUUID + `'s node "a.example.org"`},
		{"no files", `{"token": "TOKEN", "install": {"from": "join-service"}}`, freeSlot(), "/install: join-service serves no node programs"},
		{"node package source", `{"token": "TOKEN", "install": {"from": "apt", "source": "deb https://a.example.org/ b main"},
			"apt_sources": {"nodejoin-node": {"source": "deb https://b.example.org/ b main"}}}`, freeSlot(), "/apt_sources/nodejoin-node: the name is the node package's source's"},
		{"bad token", `{"token": "nodejoin.rendezvous=x", "install": {"from": "image"}}`, freeSlot(),
			"/token: token: want <uuid>:<host>[:<port>]:<secret>:sha256=<pin> (a token is nodejoin.rendezvous=<uuid>:<host>[:<port>]:<secret>:sha256=<pin>, as join-service slot add prints it)"},
		{"bad timeout", `{"token": "TOKEN", "install": {"from": "image"}, "timeout": "0s"}`, freeSlot(), "/timeout: not a positive duration"},
		{"userinfo", `{"token": "TOKEN", "install": {"from": "image"}, "phone_home": {"url": "https://u:p@i.example.org/"}}`, freeSlot(),
			"/phone_home/url: does not match pattern"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, tok, err := Decode(bytes.NewBufferString(strings.ReplaceAll(tc.doc, "TOKEN", testToken())))
			if err == nil {
				_, err = Render(in, tok, Facts{Slot: tc.slot})
			}
			if err == nil || problem.ExitCode(err) != problem.ExitRejected || !strings.HasPrefix(err.Error(), "invalid input: "+tc.want) {
				t.Errorf("got %v (exit %d), want exit 3 %q", err, problem.ExitCode(err), tc.want)
			}
			if err != nil && strings.Contains(err.Error(), testSecret) {
				t.Error("the error names the secret")
			}
		})
	}
}

// The embedded schema is cloud-init's: it refuses what cloud-init refuses.
func TestValidate(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"#cloud-config\nwrite_files:\n  - path: /etc/x\n    permissions: 0644\n", "/write_files/0/permissions: expected string, but got number"},
		{"#cloud-config\nphone_home:\n  post: all\n", "/phone_home: missing properties: 'url'"},
		{"#cloud-config\nssh_keys:\n  ed25519_privat: x\n", "/ssh_keys: additionalProperties 'ed25519_privat' not allowed"},
		{"write_files: []\n", "the user-data does not start with #cloud-config"},
	} {
		err := Validate([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%q) = %v, want %q", tc.doc, err, tc.want)
		}
	}
	if err := Validate([]byte("#cloud-config\nruncmd:\n  - [echo, hi]\n")); err != nil {
		t.Errorf("a sound user-data: %v", err)
	}
}
