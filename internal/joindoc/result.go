package joindoc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// Result is what prepare-node-join and node-daemon-setup print on standard
// output: what changed, and the facts the master needs next. It never holds
// a secret: files are named with the sha256 of their new content, and a
// secret file without one.
type Result struct {
	Program string       `json:"program"`
	Changed bool         `json:"changed"`
	DryRun  bool         `json:"dry_run"`
	Files   []FileChange `json:"files"`
	// Restarted lists the daemons restarted: "sshd", "node daemon".
	Restarted []string `json:"restarted"`
	// RootPublicKey is the login user's public key line (prepare-node-join).
	RootPublicKey string `json:"root_public_key,omitempty"`
	// HostKeyFingerprints maps each host key kind present after the run to
	// its SHA256 fingerprint, as ssh-keygen -lf prints it (prepare-node-join).
	HostKeyFingerprints map[string]string `json:"host_key_fingerprints,omitempty"`
	// ClientCertificateFingerprint is client.pem's certificate fingerprint
	// (node-daemon-setup).
	ClientCertificateFingerprint string `json:"client_certificate_fingerprint,omitempty"`
	// Warnings are what was accepted but should change, such as a DSA key;
	// each is also printed on standard error.
	Warnings []string `json:"warnings,omitempty"`
	// Stopped lists the daemons stopped: "node daemon" (node-cleanup).
	Stopped []string `json:"stopped,omitempty"`
	// Kept lists what node-cleanup left because it changed since the
	// join, or holds what the cluster did not write.
	Kept []Kept `json:"kept,omitempty"`
}

// Kept is a path node-cleanup left in place, and why.
type Kept struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
	// Backup holds the node's own content from before the join, where
	// the file was left as the operator made it.
	Backup string `json:"backup,omitempty"`
}

// FileChange is one planned or made change to a file or directory.
type FileChange struct {
	Path   string `json:"path"`
	Action string `json:"action"` // create, replace, chmod, unchanged
	Mode   string `json:"mode"`   // octal, e.g. "0600"
	SHA256 string `json:"sha256,omitempty"`
}

// resultRequired are the keys the master acts on. Every version of the
// node-side programs prints them.
var resultRequired = []string{"program", "changed"}

// DecodeResult reads a program's result (on the master). Nodes and master
// run different versions for a while in any cluster, so keys this version
// does not know are ignored (a newer node may report more); a missing key
// the master acts on is refused, as is anything after the object.
func DecodeResult(r io.Reader) (*Result, error) {
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the result: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var res Result
	if err := dec.Decode(&res); err != nil {
		return nil, fmt.Errorf("reading the result: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("reading the result: data after the JSON object")
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		return nil, fmt.Errorf("reading the result: %w", err)
	}
	for _, k := range resultRequired {
		if _, ok := keys[k]; !ok {
			return nil, fmt.Errorf("reading the result: %q is missing", k)
		}
	}
	return &res, nil
}
