package nodeconf

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
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
				c.NodeDaemonPort == 1811 && slices.Equal(c.SSHDCheckCommand, []string{"/usr/sbin/sshd", "-t"})
		}},
		{"some keys", `{"data_dir": "/srv/ganeti", "sshd_restart_command": ["/usr/sbin/service", "ssh", "restart"]}`, "", func(c *Config) bool {
			return c.DataDir == "/srv/ganeti" && c.SSHConfigDir == "/etc/ssh" && c.SSHDRestartCommand[0] == "/usr/sbin/service"
		}},
		{"relative", `{"data_dir": "var/lib"}`, `invalid input: /etc/nodejoin/node.json:/data_dir: does not match pattern '^/'`, nil},
		{"shell string", `{"sshd_check_command": "sshd -t"}`, "invalid input: /etc/nodejoin/node.json:/sshd_check_command: expected array, but got string", nil},
		{"empty command", `{"sshd_check_command": []}`, "invalid input: /etc/nodejoin/node.json:/sshd_check_command: minimum 1 items required, but found 0 items", nil},
		{"unknown", `{"data_dri": "/x"}`, "invalid input: /etc/nodejoin/node.json:/data_dri: unknown key", nil},
		{"port", `{"node_daemon_port": 70000}`, "invalid input: /etc/nodejoin/node.json:/node_daemon_port: must be <= 65535 but found 70000", nil},
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
		if err == nil && (c.DataDir == "" || len(c.SSHDCheckCommand) == 0) {
			t.Fatalf("accepted a config without a data dir or check command: %q", data)
		}
	})
}
