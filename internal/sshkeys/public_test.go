package sshkeys

import (
	"encoding/base64"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestParsePublicLine(t *testing.T) {
	ed := pubLine(t, testKey(t, Ed25519, 256, "a"), "root@node1")
	edFields := strings.Fields(ed)
	ec := pubLine(t, testKey(t, ECDSA, 256, "a"), "")
	ecBlob := strings.Fields(ec)[1]
	tests := []struct {
		name    string
		line    string
		wantErr string
	}{
		{"pub line", ed, ""},
		{"no comment, no newline", edFields[0] + " " + edFields[1], ""},
		{"crlf", strings.TrimSuffix(ed, "\n") + "\r\n", ""},
		{"options", `restrict,command="uptime -p" ` + ed, ""},
		{"leading space", "  " + ed, ""},
		{"fixture ecdsa-384", readTestdata(t, "ecdsa384.pub"), ""},
		{"empty", "", "empty line"},
		{"blank", " \t\r\n", "empty line"},
		{"comment", "# " + ed, "a comment line, not a key"},
		{"two lines", ed + ed, "more than one line"},
		{"cr inside", strings.TrimSuffix(ed, "\n") + "\rx", "more than one line"},
		{"garbage", "hello world", "no key type such as ssh-ed25519 found"},
		{"type only", "ssh-ed25519", "the key data is missing"},
		{"type only with comment field", "restrict ssh-ed25519", "the key data is missing"},
		{"bad base64", "ssh-ed25519 AAAA!!!!", "the key data is not base64"},
		{"truncated blob", "ssh-ed25519 " + edFields[1][:40], "the key data is not a valid ssh-ed25519 key"},
		{"blob cut mid-quantum", "ssh-ed25519 " + edFields[1][:41], "the key data is not base64"},
		{"blob of nothing", "ssh-ed25519 " + base64.StdEncoding.EncodeToString([]byte("nothing here")), "the key data is not a valid ssh-ed25519 key"},
		{"type differs from blob", "ssh-ed25519 " + ecBlob, "the key data holds ecdsa-sha2-nistp256, but the line says ssh-ed25519"},
		{"bad options", `command="unterminated ` + ed, "the options before the key type do not parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub, err := ParsePublicLine(tt.line)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				if l := leaks(err, tt.line); l != "" {
					t.Errorf("error %q repeats input %q", err, l)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pub == nil {
				t.Fatal("no key")
			}
		})
	}
}

func FuzzParsePublicLine(f *testing.F) {
	ed := pubLine(f, testKey(f, Ed25519, 256, "a"), "root@node1")
	f.Add(ed)
	f.Add(`restrict,command="uptime" ` + ed)
	f.Add(readTestdata(f, "rsa_pem.pub"))
	f.Add(readTestdata(f, "ecdsa384.pub"))
	f.Add("ssh-ed25519 AAAA")
	f.Add("# comment")
	f.Fuzz(func(t *testing.T, line string) {
		pub, err := ParsePublicLine(line)
		if err != nil {
			if l := leaks(err, line); l != "" {
				t.Fatalf("error %q repeats input %q", err, l)
			}
			return
		}
		// What parses must survive a round trip through the OpenSSH form.
		again, err := ParsePublicLine(string(ssh.MarshalAuthorizedKey(pub)))
		if err != nil || string(again.Marshal()) != string(pub.Marshal()) {
			t.Fatalf("round trip of %q: %v", line, err)
		}
	})
}
