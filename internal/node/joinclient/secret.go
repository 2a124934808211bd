package joinclient

import (
	"bytes"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/problem"
)

// maxCredentialFile bounds a secret or token file: a token with a few pins
// is some 300 bytes.
const maxCredentialFile = 4096

// ReadCredentialFile reads a file that holds a secret (a secret file, a
// token file), refusing it, as ssh refuses a private key, unless it is a
// regular file owned by root or by the user running the program and
// readable by nobody else: a secret others could read is no longer one.
// flag names the file in errors; the content never appears in them.
func ReadCredentialFile(flag, path string) ([]byte, error) {
	where := flag + " " + path
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, problem.Reject(where, "%v", unwrapPath(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, problem.Reject(where, "%v", unwrapPath(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, problem.Reject(where, "not a regular file")
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return nil, problem.Reject(where, "owned by uid %d, not root", st.Uid).
			WithHint("a secret file must be root's: chown root:root " + path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, problem.Reject(where, "mode %04o lets others read it", perm).
			WithHint("a secret file must be readable by its owner only: chmod 600 " + path +
				"; the secret may have been seen: issue a new slot if others could log in")
	}
	data, err := io.ReadAll(io.LimitReader(f, maxCredentialFile+1))
	if err != nil {
		return nil, problem.Reject(where, "%v", unwrapPath(err))
	}
	if len(data) > maxCredentialFile {
		return nil, problem.Reject(where, "more than %d bytes", maxCredentialFile)
	}
	return bytes.TrimSpace(data), nil
}

// unwrapPath drops the path an *os.PathError repeats (where names it).
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok { //nolint:errorlint // only the outer layer repeats the path
		return pe.Err
	}
	return err
}

// ReadSecret reads a secret from standard input (--secret-file -), at
// most maxCredentialFile bytes.
func ReadSecret(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxCredentialFile+1))
	if err != nil {
		return nil, problem.Reject("--secret-file -", "reading standard input: %v", err)
	}
	if len(data) > maxCredentialFile {
		return nil, problem.Reject("--secret-file -", "more than %d bytes", maxCredentialFile)
	}
	return bytes.TrimSpace(data), nil
}

// FromFlags is the token of --server, --uuid, the secret (of --secret-file:
// read once the flags are found sound) and --ca-pin.
func FromFlags(server, uuid string, readSecret func() ([]byte, error), pins []string) (joinapi.Token, error) {
	tok := joinapi.Token{UUID: uuid}
	host, port, err := splitServer(server)
	if err != nil {
		return tok, err
	}
	tok.Host, tok.Port = host, port
	secret, err := readSecret()
	if err != nil {
		return tok, err
	}
	tok.Secret = string(secret)
	if tok.Pins, err = addPins(nil, pins); err != nil {
		return tok, err
	}
	// The token's own parser checks the uuid and the secret's form; its
	// errors never repeat the secret.
	if _, err := joinapi.ParseToken(tok.Text()); err != nil {
		return tok, problem.Reject("--uuid, --secret-file", "%v", err)
	}
	return tok, nil
}

// FromText is the token of a token file or of a kernel command line's
// nodejoin.rendezvous= parameter; extra pins (--ca-pin) are added to its
// own, so that a rotation can overlap.
func FromText(where, text string, extra []string) (joinapi.Token, error) {
	text = strings.TrimPrefix(strings.TrimSpace(text), joinapi.BootParamKey+"=")
	tok, err := joinapi.ParseToken(text)
	if err != nil {
		return tok, problem.Reject(where, "%v", err)
	}
	if tok.Pins, err = addPins(tok.Pins, extra); err != nil {
		return tok, err
	}
	return tok, nil
}

// FromCmdline is the token of the first nodejoin.rendezvous= parameter of
// a kernel command line (the text of /proc/cmdline).
func FromCmdline(where, cmdline string, extra []string) (joinapi.Token, error) {
	for _, f := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(f, joinapi.BootParamKey+"="); ok {
			return FromText(where, v, extra)
		}
	}
	return joinapi.Token{}, problem.Reject(where, "no %s= parameter", joinapi.BootParamKey).
		WithHint("boot with " + joinapi.BootParamKey + "=<uuid>:<host>[:<port>]:<secret>:sha256=<pin> (join-service slot add prints it as boot_param)")
}

func addPins(have, pins []string) ([]string, error) {
	for _, p := range pins {
		pin, err := joinapi.ParsePin(p)
		if err != nil {
			return nil, problem.Reject("--ca-pin", "%v", err)
		}
		have = append(have, pin)
	}
	return have, nil
}

// splitServer reads HOST[:PORT], an IPv6 host in brackets.
func splitServer(s string) (string, int, error) {
	bad := func() (string, int, error) {
		return "", 0, problem.Usagef("--server: %q is not HOST[:PORT] (an IPv6 address in brackets)", s)
	}
	if s == "" {
		return "", 0, problem.Usagef("--server HOST[:PORT] is required with --uuid (or give --boot-param or --token-file)")
	}
	host, portText, err := net.SplitHostPort(s)
	if err != nil {
		if strings.Contains(s, ":") && !strings.HasPrefix(s, "[") {
			return bad()
		}
		host, portText = strings.Trim(s, "[]"), ""
	}
	if host == "" || strings.ContainsAny(host, "[]/ ") {
		return bad()
	}
	port := 0
	if portText != "" {
		p, err := strconv.Atoi(portText)
		if err != nil || p < 1 || p > 65535 {
			return bad()
		}
		port = p
	}
	return host, port, nil
}
