package callback

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestUnitVerifies: systemd-analyze verify accepts the unit callback-setup
// writes, with no warning.
func TestUnitVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("needs systemd-analyze(1) (Debian's systemd package)")
	}
	targets, _ := filepath.Glob("/usr/lib/systemd/system/*.target")
	if len(targets) == 0 {
		t.Skip("no systemd targets in /usr/lib/systemd/system to verify against")
	}
	root := t.TempDir()
	dir := filepath.Join(root, "etc", "systemd", "system")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tg := range targets {
		if data, err := os.ReadFile(tg); err == nil {
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(tg)), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The root's own ssh: systemd-analyze checks ExecStart under --root.
	ssh := "/usr/bin/ssh"
	if err := os.MkdirAll(filepath.Join(root, "usr", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, ssh), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := Settings{MasterHost: "master.example.org", MasterPort: 22, CallbackUser: "nodejoin-callback", RemotePort: 22000,
		LocalPort: 22, ServerAliveInterval: 15, ServerAliveCountMax: 3}
	if err := os.WriteFile(filepath.Join(dir, UnitName), s.Unit(ssh), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", "--man=no", "--root="+root, "/etc/systemd/system/"+UnitName).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
