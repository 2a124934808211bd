package joinclient

import (
	"strings"
	"testing"

	"github.com/nodejoin/nodejoin/internal/joinapi"
)

// --server's forms (joinapi's tests cover the token's own).
func TestSplitServer(t *testing.T) {
	for _, tc := range []struct {
		in   string
		host string
		port int
		err  string
	}{
		{"master.example.org", "master.example.org", 0, ""},
		{"master.example.org:8443", "master.example.org", 8443, ""},
		{"192.0.2.1:1816", "192.0.2.1", 1816, ""},
		{"[2001:db8::1]:1816", "2001:db8::1", 1816, ""},
		{"[2001:db8::1]", "2001:db8::1", 0, ""},
		{"2001:db8::1", "", 0, `--server: "2001:db8::1" is not HOST[:PORT] (an IPv6 address in brackets)`},
		{"m:0", "", 0, `--server: "m:0" is not HOST[:PORT] (an IPv6 address in brackets)`},
		{":1816", "", 0, `--server: ":1816" is not HOST[:PORT] (an IPv6 address in brackets)`},
	} {
		host, port, err := splitServer(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || host != tc.host || port != tc.port {
			t.Errorf("%q: %q %d %v", tc.in, host, port, err)
		}
	}
}

// --ca-pin adds to the token's pins, so that a rotation can overlap; the
// first rendezvous parameter of the command line is the one taken.
func TestFromCmdlineExtraPins(t *testing.T) {
	a, b := strings.Repeat("ab", 32), strings.Repeat("CD", 32)
	line := "ro nodejoin.rendezvous=" + testUUID + ":[2001:db8::1]:" + testSecret + ":sha256=" + a +
		" quiet nodejoin.rendezvous=dynamic:other:" + testSecret + ":sha256=" + a
	tok, err := FromCmdline("/proc/cmdline", line, []string{"sha256:" + b})
	if err != nil {
		t.Fatal(err)
	}
	if tok.UUID != testUUID || tok.Address() != "[2001:db8::1]:1816" || len(tok.Pins) != 2 ||
		tok.Pins[0] != "sha256:"+a || tok.Pins[1] != "sha256:"+strings.ToLower(b) {
		t.Errorf("token %v, pins %v", tok, tok.Pins)
	}
	if _, err := FromCmdline("/proc/cmdline", line, []string{"sha256:zz"}); err == nil ||
		err.Error() != `invalid input: --ca-pin: pin: "sha256:zz" is not 64 hex digits after "sha256:"` {
		t.Errorf("a bad extra pin: %v", err)
	}
	if _, err := FromText("--token-file t", joinapi.BootParamKey+"="+testUUID+":m:"+testSecret, nil); err == nil ||
		strings.Contains(err.Error(), testSecret) || !strings.Contains(err.Error(), "a token without a pin is refused") {
		t.Errorf("a token without a pin: %v", err)
	}
}
