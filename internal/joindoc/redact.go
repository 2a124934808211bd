package joindoc

import "fmt"

// redact is how a redacted view shows a secret: its size only. Not even a
// digest: a digest of a low-entropy secret (an operator's hmac key) lets
// anyone who sees the output confirm a guess offline (doc/design.md).
func redact(s string) string {
	if s == "" {
		return ""
	}
	return fmt.Sprintf("(secret, %d bytes)", len(s))
}

func redactKeys(keys []KeyTriple) []KeyTriple {
	if keys == nil {
		return nil
	}
	out := make([]KeyTriple, len(keys))
	for i, k := range keys {
		out[i] = KeyTriple{Kind: k.Kind, Private: redact(k.Private), Public: k.Public}
	}
	return out
}

// Redacted is the document as a dry run or a log may show it: every
// private key replaced by its size. The receiver is not changed.
func (p Prepare) Redacted() Prepare {
	p.SSHHostKey = redactKeys(p.SSHHostKey)
	p.SSHRootKey = redactKeys(p.SSHRootKey)
	return p
}

// Redacted is the document as a dry run or a log may show it: the node
// daemon certificate (which holds the cluster's private key) and the hmac
// key replaced by their sizes. The receiver is not changed.
func (d DaemonSetup) Redacted() DaemonSetup {
	d.NodeDaemonCertificate = redact(d.NodeDaemonCertificate)
	d.HMACKey = redact(d.HMACKey)
	return d
}
