package ssconf

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// CandidateCertsKey lists the client certificates allowed to act as the
// master: one "node=DIGEST" line each (Ganeti: node UUID, or "bootstrap"
// during renew-crypto; here the node's name until UUIDs exist), DIGEST
// being certs.Digest of the candidate's client.pem.
const CandidateCertsKey = "master_candidates_certs"

var digestRE = regexp.MustCompile(`^[0-9A-F]{2}(:[0-9A-F]{2}){19}$`)

// CandidateCerts parses a master_candidates_certs value into node → digest.
func CandidateCerts(value string) (map[string]string, error) {
	out := map[string]string{}
	for i, l := range strings.Split(value, "\n") {
		if l == "" {
			continue
		}
		node, digest, ok := strings.Cut(l, "=")
		switch {
		case !ok || node == "":
			return nil, fmt.Errorf("line %d: %q is not node=DIGEST", i+1, l)
		case !digestRE.MatchString(digest):
			return nil, fmt.Errorf("line %d: %q is not a SHA-1 digest in colon hex (AB:CD:…)", i+1, digest)
		}
		if _, dup := out[node]; dup {
			return nil, fmt.Errorf("line %d: %q is listed twice", i+1, node)
		}
		out[node] = digest
	}
	return out, nil
}

// ListsDigest says whether a master_candidates_certs value lists digest.
// A value that does not parse lists nothing.
func ListsDigest(value, digest string) bool {
	m, err := CandidateCerts(value)
	if err != nil {
		return false
	}
	for _, d := range m {
		if d == digest {
			return true
		}
	}
	return false
}

// WithCandidateCert returns value with node's line set to digest, the
// other lines kept, in node order.
func WithCandidateCert(value, node, digest string) (string, error) {
	m, err := CandidateCerts(value)
	if err != nil {
		return "", err
	}
	m[node] = digest
	lines := make([]string, 0, len(m))
	for n, d := range m {
		lines = append(lines, n+"="+d)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n"), nil
}
