package sshkeys

import (
	"bytes"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// RemoveAuthorized takes keys out of the content of an authorized_keys
// file (ssh-update's authorized_keys remove). A line goes when it carries
// one of the keys with no options before it, compared on the marshalled
// key (type and blob) whatever its comment, or when its fields are exactly
// one of the keys' fields: Ganeti's RemoveAuthorizedKeys compared ssh-rsa
// and ssh-dss lines on type and blob and every other line on its fields,
// so a line the operator restricted with options (from="...") stays, and
// ours keeps that, for every key type. Every other line is kept byte for
// byte and in order. removed is 0 exactly when out equals existing.
func RemoveAuthorized(existing []byte, keys []string) (out []byte, removed int) {
	plain := map[string]bool{} // marshalled keys
	var fields [][]string
	for _, k := range keys {
		for l := range strings.SplitSeq(strings.TrimRight(k, "\r\n"), "\n") {
			l = strings.TrimRight(l, "\r")
			if strings.TrimSpace(l) == "" {
				continue
			}
			fields = append(fields, strings.Fields(l))
			if pub, _, opts, _, err := ssh.ParseAuthorizedKey([]byte(l)); err == nil && len(opts) == 0 {
				plain[string(pub.Marshal())] = true
			}
		}
	}
	lines := bytes.SplitAfter(existing, []byte("\n"))
	out = make([]byte, 0, len(existing))
	for _, l := range lines {
		text := strings.TrimRight(string(l), "\r\n")
		if drop(text, plain, fields) {
			removed++
			continue
		}
		out = append(out, l...)
	}
	if removed == 0 {
		return bytes.Clone(existing), 0
	}
	return out, removed
}

func drop(line string, plain map[string]bool, fields [][]string) bool {
	if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
		return false
	}
	if pub, _, opts, _, err := ssh.ParseAuthorizedKey([]byte(line)); err == nil && len(opts) == 0 && plain[string(pub.Marshal())] {
		return true
	}
	f := strings.Fields(line)
	return slices.ContainsFunc(fields, func(k []string) bool { return slices.Equal(k, f) })
}
