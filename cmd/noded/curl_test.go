package main

import (
	"bufio"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/certs"
)

// The curl example of noded(8) works as written, with the real curl: the
// server is checked against the cluster certificate under the cluster's
// name (--resolve), not skipped (-k would cancel --cacert).
func TestManPageCurlExample(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed (Debian: curl); skipping the man page's example")
	}
	example := manExample(t, "curl ")
	if strings.Contains(example, " -k") || strings.Contains(example, "--insecure") {
		t.Errorf("the example turns the server check off: %s", example)
	}
	bin, root, port, serverPEM, _ := daemonRoot(t)
	if out, err := exec.Command(bin, "--restart", "--root", root).CombinedOutput(); err != nil {
		t.Fatalf("noded --restart: %v\n%s", err, out)
	}
	server, err := certs.ParseKeyPair(serverPEM)
	if err != nil {
		t.Fatal(err)
	}
	clientPEM, err := certs.NewClientCertificate(server, "master.c1.example.org", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "server-cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: server.Cert.Raw}), 0o644)
	os.WriteFile(filepath.Join(dir, "client.pem"), clientPEM, 0o600)
	// The example's node address, port and files, made this test's.
	args := strings.Fields(strings.NewReplacer("192.0.2.11", "127.0.0.1", ":1811", ":"+strconv.Itoa(port),
		"/var/lib/ganeti/client.pem", filepath.Join(dir, "client.pem")).Replace(example))
	cmd := exec.Command(args[0], append(args[1:], "-sS", "--max-time", "10")...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"program":"noded"`) {
		t.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}

	// The same with another name than the cluster's is refused: the check is real.
	bad := strings.Fields(strings.ReplaceAll(strings.Join(args, " "), "c1.example.org", "node1.example.org"))
	cmd = exec.Command(bad[0], append(bad[1:], "-sS", "--max-time", "10")...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("curl accepted a server certificate under another name:\n%s", out)
	}
}

// manExample is the first line of noded(8)'s EXAMPLES that starts with
// prefix, without its indentation.
func manExample(t *testing.T, prefix string) string {
	t.Helper()
	f, err := os.Open("../../doc/noded.8.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("no example starting with %q in noded(8)", prefix)
	return ""
}
