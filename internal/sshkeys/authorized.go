package sshkeys

import (
	"bytes"
	"strings"

	"golang.org/x/crypto/ssh"
)

// MergeAuthorized adds keys to the content of an authorized_keys file.
// Existing lines are kept byte for byte and in order, whatever they hold
// (comments, blank lines, options, lines we cannot parse), since they belong
// to whoever wrote them. A key is skipped when an existing line or one added
// before it in this call carries the same key, compared on the marshalled key
// (type and blob), whatever the options or comment; Ganeti compared ecdsa and
// ed25519 lines as whole text, so a new comment added the key twice.
//
// Added lines have trailing CR and LF removed and end in "\n"; a "\n" is first
// added to existing content that lacks one. An add string holding several
// lines is taken line by line, and blank ones are skipped. Callers check add
// lines with ParsePublicLine first; one that does not parse is appended only
// if no identical line exists. added is 0 exactly when merged equals
// existing, so a caller can skip the write.
func MergeAuthorized(existing []byte, add []string) (merged []byte, added int) {
	keys := map[string]bool{}  // marshalled keys present
	lines := map[string]bool{} // lines present, without the trailing CR
	for l := range bytes.SplitSeq(existing, []byte("\n")) {
		l = bytes.TrimRight(l, "\r")
		lines[string(l)] = true
		if k := lineKey(l); k != "" {
			keys[k] = true
		}
	}
	var tail []byte
	for _, a := range add {
		for l := range strings.SplitSeq(strings.TrimRight(a, "\r\n"), "\n") {
			l = strings.TrimRight(l, "\r")
			if strings.TrimSpace(l) == "" {
				continue
			}
			if k := lineKey([]byte(l)); k != "" {
				if keys[k] {
					continue
				}
				keys[k] = true
			} else if lines[l] {
				continue
			}
			lines[l] = true
			tail = append(append(tail, l...), '\n')
			added++
		}
	}
	if added == 0 {
		return bytes.Clone(existing), 0
	}
	merged = make([]byte, 0, len(existing)+1+len(tail))
	merged = append(merged, existing...)
	if len(existing) > 0 && existing[len(existing)-1] != '\n' {
		merged = append(merged, '\n')
	}
	return append(merged, tail...), added
}

// lineKey returns the marshalled key of one line, or "" if it holds none.
func lineKey(line []byte) string {
	pub, _, _, _, err := ssh.ParseAuthorizedKey(line)
	if err != nil {
		return ""
	}
	return string(pub.Marshal())
}
