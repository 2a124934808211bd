package joinapi

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// BootParamKey names the kernel command line parameter that carries a
// token: nodejoin.rendezvous=<token>.
const BootParamKey = "nodejoin.rendezvous"

// Token is what a booting machine is given to find and fetch its slot:
//
//	<uuid>:<host>[:<port>]:<secret>:sha256=<pin>[:sha256=<pin>...]
//
// An IPv6 host is written in brackets. The secret is base64url text (no
// ':' nor '='), so the fields after the host are unambiguous: the trailing
// "sha256=" fields are pins, and before them come the secret alone or the
// port and the secret. The uuid is DynamicUUID for a dynamic pool.
type Token struct {
	UUID   string
	Host   string
	Port   int // 0: DefaultPort
	Secret string
	Pins   []string // "sha256:<hex>", at least one: no pin, no join
}

// Text is the token's text. It holds the secret: never log it.
func (t Token) Text() string { return t.text(t.Secret) }

// String is the token with its secret replaced by "REDACTED", so that a
// token printed by mistake (%v, a log line) does not leak it.
func (t Token) String() string { return t.text("REDACTED") }

func (t Token) text(secret string) string {
	var b strings.Builder
	b.WriteString(t.UUID)
	b.WriteByte(':')
	if strings.Contains(t.Host, ":") {
		b.WriteString("[" + t.Host + "]")
	} else {
		b.WriteString(t.Host)
	}
	if t.Port != 0 {
		b.WriteString(":" + strconv.Itoa(t.Port))
	}
	b.WriteString(":" + secret)
	for _, p := range t.Pins {
		b.WriteString(":sha256=" + strings.TrimPrefix(p, pinPrefix))
	}
	return b.String()
}

// BootParam is the kernel command line parameter for t.
func (t Token) BootParam() string { return BootParamKey + "=" + t.Text() }

// Address is host:port to dial.
func (t Token) Address() string {
	port := t.Port
	if port == 0 {
		port = DefaultPort
	}
	return net.JoinHostPort(t.Host, strconv.Itoa(port))
}

// ErrToken is wrapped by every error of ParseToken. Its messages never
// repeat the secret.
var ErrToken = errors.New("token")

// ParseToken reads a token's text. A token without a pin is refused: the
// master is trusted by its pinned key only.
func ParseToken(s string) (Token, error) {
	var t Token
	bad := func(format string, args ...any) (Token, error) {
		return Token{}, fmt.Errorf("%w: %s", ErrToken, fmt.Sprintf(format, args...))
	}
	uuid, rest, ok := strings.Cut(s, ":")
	if !ok {
		return bad("want <uuid>:<host>[:<port>]:<secret>:sha256=<pin>")
	}
	if uuid != DynamicUUID && !isUUID(uuid) {
		return bad("uuid: %q is not a UUID nor %q", clip(uuid), DynamicUUID)
	}
	t.UUID = strings.ToLower(uuid)
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return bad("host: unclosed '[' of an IPv6 address")
		}
		t.Host, rest = rest[1:end], rest[end+1:]
		if ip := net.ParseIP(t.Host); ip == nil || ip.To4() != nil {
			return bad("host: %q in brackets is not an IPv6 address", clip(t.Host))
		}
		if !strings.HasPrefix(rest, ":") {
			return bad("want ':' after the IPv6 address")
		}
		rest = rest[1:]
	} else {
		t.Host, rest, _ = strings.Cut(rest, ":")
		if t.Host == "" {
			return bad("host: empty")
		}
	}
	fields := strings.Split(rest, ":")
	n := len(fields)
	for n > 0 && strings.HasPrefix(fields[n-1], "sha256=") {
		n--
	}
	for _, f := range fields[n:] {
		p, err := ParsePin("sha256:" + strings.TrimPrefix(f, "sha256="))
		if err != nil {
			return bad("%v", err)
		}
		t.Pins = append(t.Pins, p)
	}
	if len(t.Pins) == 0 {
		return bad("no sha256=<pin> of the master's certificate: a token without a pin is refused")
	}
	switch n {
	case 1:
	case 2:
		port, err := strconv.Atoi(fields[0])
		if err != nil || port < 1 || port > 65535 {
			return bad("port: %q is not a port (1 to 65535)", clip(fields[0]))
		}
		t.Port = port
	default:
		return bad("want <uuid>:<host>[:<port>]:<secret>:sha256=<pin>, got %d fields between the host and the pins", n)
	}
	t.Secret = fields[n-1]
	if !isSecret(t.Secret) {
		return bad("secret: not 22 to 128 characters of base64url text")
	}
	return t, nil
}

// FindBootParam returns the token of the first nodejoin.rendezvous=
// parameter of a kernel command line (/proc/cmdline).
func FindBootParam(cmdline string) (Token, bool, error) {
	for _, f := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(f, BootParamKey+"="); ok {
			t, err := ParseToken(v)
			return t, true, err
		}
	}
	return Token{}, false, nil
}

func isUUID(u string) bool {
	if len(u) != 36 {
		return false
	}
	for i, c := range []byte(strings.ToLower(u)) {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
		} else if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// isSecret is the store's rule for a secret: 22 (128 bits) to 128
// characters of base64url.
func isSecret(s string) bool {
	if len(s) < 22 || len(s) > 128 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
