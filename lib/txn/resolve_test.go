package txn

import (
	"os"
	"path/filepath"
	"testing"
)

func TestResolve(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a link to nobody")
	}
	root := t.TempDir()
	for _, d := range []string{"etc", "usr/local/etc/ssh", "home/real", "srv"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"etc/ssh":     "/usr/local/etc/ssh", // absolute: from the root
		"home/rel":    "real",
		"home/up":     "../srv",
		"home/out":    "../../..",
		"home/abs-up": "/../..",
		"home/loop":   "loop",
		"home/nobody": "real",
		"srv/chain":   "/home/rel",
	}
	for p, target := range links {
		if err := os.Symlink(target, filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Lchown(filepath.Join(root, "home/nobody"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ np, want, wantErr string }{
		{np: "/etc/ssh/ssh_host_rsa_key", want: "usr/local/etc/ssh/ssh_host_rsa_key"},
		{np: "/home/rel/.ssh", want: "home/real/.ssh"},
		{np: "/home/up/x", want: "srv/x"},
		{np: "/srv/chain/.ssh/authorized_keys", want: "home/real/.ssh/authorized_keys"},
		{np: "/home/missing/.ssh", want: "home/missing/.ssh"},
		{np: "/etc/ssh", want: "etc/ssh"}, // the last component is not followed
		{np: "/home/out/.ssh", wantErr: "/home/out/.ssh: leads out of the root (/home/out -> ../../..)"},
		{np: "/home/abs-up/x", wantErr: "/home/abs-up/x: leads out of the root (/home/abs-up -> /../..)"},
		{np: "/home/loop/x", wantErr: "/home/loop/x: too many levels of symbolic links (/home/loop)"},
		{np: "/home/nobody/.ssh", wantErr: "/home/nobody/.ssh: goes through a symbolic link owned by uid 65534 (/home/nobody)"},
	} {
		got, err := Resolve(root, tc.np)
		switch {
		case tc.wantErr != "":
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%s: got %q, %v; want error %q", tc.np, got, err, tc.wantErr)
			}
		case err != nil || got != filepath.Join(root, tc.want):
			t.Errorf("%s: got %q, %v; want %s", tc.np, got, err, filepath.Join(root, tc.want))
		}
	}
	// The node's own root: /.. is /.
	if got, err := Resolve("/", "/../etc/passwd"); err != nil || got != "/etc/passwd" {
		t.Errorf("root /: got %q, %v", got, err)
	}
}
