package nodeconf

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/daemon"
)

func writeFile(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	for _, tc := range []struct {
		name, conf, wantErr string
		check               func(*Config) bool
	}{
		{"no file", "", "", func(c *Config) bool {
			return c.DataDir == "/var/lib/ganeti" && c.SSHConfigDir == "/etc/ssh" && c.SSHLoginUser == "root" &&
				c.NodeDaemonPort == 1811 && slices.Equal(c.SSHDCheckCommand.Argv(), []string{"/usr/sbin/sshd", "-t"})
		}},
		{"some keys", `{"data_dir": "/srv/ganeti", "sshd_restart_command": ["/usr/sbin/service", "ssh", "restart"]}`, "", func(c *Config) bool {
			return c.DataDir == "/srv/ganeti" && c.SSHConfigDir == "/etc/ssh" && c.SSHDRestartCommand.Argv()[0] == "/usr/sbin/service"
		}},
		{"relative", `{"data_dir": "var/lib"}`, `invalid input: /etc/nodejoin/node.json:/data_dir: does not match pattern '^/'`, nil},
		{"shell string", `{"sshd_check_command": "sshd -t"}`, "invalid input: /etc/nodejoin/node.json:/sshd_check_command: expected array, but got string", nil},
		{"empty command", `{"sshd_check_command": []}`, "invalid input: /etc/nodejoin/node.json:/sshd_check_command: minimum 1 items required, but found 0 items", nil},
		{"unknown", `{"data_dri": "/x"}`, "invalid input: /etc/nodejoin/node.json:/data_dri: unknown key", nil},
		{"port", `{"node_daemon_port": 70000}`, "invalid input: /etc/nodejoin/node.json:/node_daemon_port: must be <= 65535 but found 70000", nil},
		{"defaults without ganeti", "", "", func(c *Config) bool {
			return c.ganeti == "" && reflect.DeepEqual(c.NodeDaemonRestartCommand, Commands{daemon.Builtin("noded", "--restart")}) &&
				c.ClientKey() == certs.KeySpec{Type: "ecdsa", Bits: 256} &&
				slices.Equal(c.ClientKeysKept(), []certs.KeySpec{{Type: "ecdsa", Bits: 256}, certs.GanetiClientKey}) &&
				slices.Equal(c.SSHQueryKeyCommand.Argv(), []string{"ssh", "-Q", "key"})
		}},
		{"one restart command", `{"node_daemon_restart_command": ["/bin/true"]}`, "", func(c *Config) bool {
			return reflect.DeepEqual(c.NodeDaemonRestartCommand, Commands{daemon.Builtin("/bin/true")})
		}},
		{"restart sequence", `{"node_daemon_restart_command": [["/a", "stop-all"], ["/a", "start", "ganeti-noded"]]}`, "", func(c *Config) bool {
			return reflect.DeepEqual(c.NodeDaemonRestartCommand, Commands{daemon.Builtin("/a", "stop-all"), daemon.Builtin("/a", "start", "ganeti-noded")})
		}},
		{"empty sequence", `{"node_daemon_restart_command": [[]]}`, "invalid input: /etc/nodejoin/node.json:/node_daemon_restart_command/0: expected string, but got array\ninvalid input: /etc/nodejoin/node.json:/node_daemon_restart_command/0: minimum 1 items required, but found 0 items", nil},
		{"ecdsa client key", `{"client_key_type": "ecdsa"}`, "", func(c *Config) bool {
			return c.ClientKey() == certs.KeySpec{Type: "ecdsa", Bits: 256} &&
				slices.Equal(c.ClientKeysKept(), []certs.KeySpec{{Type: "ecdsa", Bits: 256}})
		}},
		{"rsa client key", `{"client_key_type": "rsa"}`, "", func(c *Config) bool {
			return c.ClientKey() == certs.GanetiClientKey && slices.Equal(c.ClientKeysKept(), []certs.KeySpec{certs.GanetiClientKey})
		}},
		// A size alone is an RSA size, as before ecdsa became the default.
		{"rsa 4096 client key", `{"client_key_bits": 4096}`, "", func(c *Config) bool {
			return c.ClientKey() == certs.KeySpec{Type: "rsa", Bits: 4096}
		}},
		{"weak client key", `{"client_key_bits": 1024}`, "invalid input: /etc/nodejoin/node.json:/client_key_bits: rsa keys must have 2048 to 16384 bits, not 1024", nil},
		{"ed25519 client key", `{"client_key_type": "ed25519"}`, `invalid input: /etc/nodejoin/node.json:/client_key_type: value must be one of "rsa", "ecdsa"`, nil},
		// A problem of the whole file is named by the file alone.
		{"blank", " \n", "invalid input: /etc/nodejoin/node.json: the document is empty; expected one JSON object", nil},
		{"syntax", `{"data_dir": }`, "invalid input: /etc/nodejoin/node.json: line 1, column 14: not valid JSON", nil},
		{"not an object", `[]`, "invalid input: /etc/nodejoin/node.json:/: expected object, but got array", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if tc.conf != "" {
				writeFile(t, filepath.Join(root, File), tc.conf)
			}
			c, err := Load(root)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.wantErr {
				t.Fatalf("got %q\nwant %q", got, tc.wantErr)
			}
			if tc.check != nil && !tc.check(c) {
				t.Errorf("config %+v", c)
			}
		})
	}
}

// TestGanetiDetected lays out Debian's ganeti 3.0.2 package under a root:
// /usr/lib/ganeti/daemon-util is a link to default/usr/lib/ganeti/daemon-util,
// default links to /etc/ganeti/lib, which the master points at
// /usr/lib/ganeti/3.0 (dpkg -c ganeti_3.0.2-3_all.deb ganeti-3.0_3.0.2-3_all.deb).
func TestGanetiDetected(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(root string)
		want  string
	}{
		{"debian, version active", func(root string) {
			writeFile(t, filepath.Join(root, "usr/lib/ganeti/3.0/usr/lib/ganeti/daemon-util"), "#!/bin/bash\n")
			symlink(t, "default/usr/lib/ganeti/daemon-util", filepath.Join(root, "usr/lib/ganeti/daemon-util"))
			symlink(t, "/etc/ganeti/lib", filepath.Join(root, "usr/lib/ganeti/default"))
			symlink(t, "/usr/lib/ganeti/3.0", filepath.Join(root, "etc/ganeti/lib"))
		}, "/usr/lib/ganeti/daemon-util"},
		{"debian, before the master set the version", func(root string) {
			symlink(t, "default/usr/lib/ganeti/daemon-util", filepath.Join(root, "usr/lib/ganeti/daemon-util"))
		}, "/usr/lib/ganeti/daemon-util"},
		{"el", func(root string) {
			writeFile(t, filepath.Join(root, "usr/lib64/ganeti/daemon-util"), "#!/bin/bash\n")
		}, "/usr/lib64/ganeti/daemon-util"},
		{"source install", func(root string) {
			writeFile(t, filepath.Join(root, "usr/local/lib/ganeti/daemon-util"), "#!/bin/bash\n")
		}, "/usr/local/lib/ganeti/daemon-util"},
		{"ganeti's directory without daemon-util", func(root string) {
			writeFile(t, filepath.Join(root, "usr/lib/ganeti/tools/README"), "")
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tc.setup(root)
			c, err := Load(root)
			if err != nil {
				t.Fatal(err)
			}
			want := Commands{daemon.Builtin("noded", "--restart")}
			if tc.want != "" {
				du := filepath.Join(root, tc.want)
				want = Commands{daemon.Builtin(du, "stop-all"), daemon.Builtin(du, "start", "ganeti-noded"), daemon.Builtin(du, "start", "ganeti-mond")}
			}
			if c.ganeti != tc.want || !reflect.DeepEqual(c.NodeDaemonRestartCommand, want) {
				t.Errorf("Ganeti %q, restart %q; want %q, %q", c.ganeti, c.NodeDaemonRestartCommand, tc.want, want)
			}
			// Where Ganeti is, a new client.pem gets Ganeti's key, and only
			// that one is kept (its verify calls anything else weak).
			wantKeys := []certs.KeySpec{certs.GanetiClientKey}
			if tc.want == "" {
				wantKeys = []certs.KeySpec{{Type: "ecdsa", Bits: 256}, certs.GanetiClientKey}
			}
			if !slices.Equal(c.ClientKeysKept(), wantKeys) || c.ClientKey() != wantKeys[0] {
				t.Errorf("client key %v, kept %v; want %v", c.ClientKey(), c.ClientKeysKept(), wantKeys)
			}
			// A restart command in node.json wins over the detection.
			writeFile(t, filepath.Join(root, File), `{"node_daemon_restart_command": ["/bin/true"]}`)
			if c, err = Load(root); err != nil || !reflect.DeepEqual(c.NodeDaemonRestartCommand, Commands{daemon.Builtin("/bin/true")}) {
				t.Errorf("with node.json: %v, %q", err, c.NodeDaemonRestartCommand)
			}
		})
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func TestLoginUser(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "etc/passwd"), "daemon:x:1:1::/usr/sbin:/bin/false\nganeti:x:1000:1001:G:/home/ganeti:/bin/sh\n")
	writeFile(t, filepath.Join(root, File), `{"ssh_login_user": "ganeti"}`)
	c, err := Load(root)
	if err != nil {
		t.Fatal(err)
	}
	u, err := c.LoginUser()
	if err != nil {
		t.Fatal(err)
	}
	if u.UID != 1000 || u.GID != 1001 || u.Home != "/home/ganeti" || c.Path(u.Home) != filepath.Join(root, "home/ganeti") {
		t.Errorf("user %+v", u)
	}
	// A root without the user falls back to the system's database.
	writeFile(t, filepath.Join(root, File), `{"ssh_login_user": "root"}`)
	c, _ = Load(root)
	if u, err := c.LoginUser(); err != nil || u.UID != 0 {
		t.Errorf("root: %+v %v", u, err)
	}
	writeFile(t, filepath.Join(root, File), `{"ssh_login_user": "nosuchuser"}`)
	c, _ = Load(root)
	if _, err := c.LoginUser(); err == nil || err.Error() != `cannot resolve the home of user "nosuchuser": user: unknown user nosuchuser` {
		t.Errorf("unknown user: %v", err)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte(`{"data_dir": "/x", "sshd_check_command": ["a"]}`))
	root := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		writeFile(t, filepath.Join(root, File), string(data))
		c, err := Load(root)
		if err == nil && (c.DataDir == "" || c.SSHDCheckCommand.IsZero()) {
			t.Fatalf("accepted a config without a data dir or check command: %q", data)
		}
	})
}

func TestNodedUnitRestart(t *testing.T) {
	defer func(f func() bool) { systemdRuns = f }(systemdRuns)
	for _, tc := range []struct {
		name    string
		systemd bool
		unit    string // installed under the root, "" none
		ganeti  bool
		want    Commands
	}{
		{"systemd and the unit", true, "usr/lib/systemd/system/noded.service", false, Commands{daemon.Builtin("systemctl", "restart", "noded")}},
		{"systemd and the unit in /lib", true, "lib/systemd/system/noded.service", false, Commands{daemon.Builtin("systemctl", "restart", "noded")}},
		{"the unit without systemd", false, "usr/lib/systemd/system/noded.service", false, Commands{daemon.Builtin("noded", "--restart")}},
		{"systemd without the unit", true, "", false, Commands{daemon.Builtin("noded", "--restart")}},
		{"Ganeti first", true, "usr/lib/systemd/system/noded.service", true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			systemdRuns = func() bool { return tc.systemd }
			if tc.unit != "" {
				writeFile(t, filepath.Join(root, tc.unit), "[Service]\n")
			}
			want := tc.want
			if tc.ganeti {
				du := filepath.Join(root, "usr/lib/ganeti/daemon-util")
				writeFile(t, du, "#!/bin/sh\n")
				want = ganetiRestart(du)
			}
			c, err := Load(root)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.NodeDaemonRestartCommand, want) {
				t.Errorf("restart %q, want %q", c.NodeDaemonRestartCommand, want)
			}
		})
	}
}
