// Package hostname says what a node or cluster name may be: a host name
// of RFC 1123 (section 2.1) in its relative form. The names end up in
// ssconf files, certificate subjects, known_hosts lines and command
// arguments, so anything else (a NUL, a newline, "/CN=") is refused
// before it gets there. The schemas' "hostname" format and the programs'
// name arguments both check with Check.
package hostname

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxLen is the longest name (RFC 1035 section 2.3.4, less the root's dot
// and the length bytes of the wire form).
const MaxLen = 253

// Check returns why s is not a host name: dot-separated labels of 1 to 63
// ASCII letters, digits and '-', none starting or ending with '-', at most
// MaxLen bytes in all. A trailing dot (the absolute form) is refused: the
// names are compared byte for byte with what ssconf, certificates and
// known_hosts hold, so each name has one spelling.
func Check(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty")
	case len(s) > MaxLen:
		return fmt.Errorf("longer than %d bytes", MaxLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLDH(c) && c != '.' {
			return fmt.Errorf("byte %d (%s) is not a letter, digit, '-' or '.'", i, show(c))
		}
	}
	if strings.HasSuffix(s, ".") {
		return fmt.Errorf("must not end with '.'")
	}
	for n, label := range strings.Split(s, ".") {
		switch {
		case label == "":
			return fmt.Errorf("label %d is empty", n+1)
		case len(label) > 63:
			return fmt.Errorf("label %d is longer than 63 bytes", n+1)
		case label[0] == '-':
			return fmt.Errorf("label %d starts with '-'", n+1)
		case label[len(label)-1] == '-':
			return fmt.Errorf("label %d ends with '-'", n+1)
		}
	}
	return nil
}

func isLDH(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
}

// show names a byte without printing a control character or half a UTF-8
// sequence.
func show(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("0x%02x", c)
}
