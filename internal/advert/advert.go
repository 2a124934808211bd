// Package advert is the DNS-SD advert of auto-registration (doc/design.md,
// "Auto-registration"): the service type, its TXT record in a fixed order
// and within fixed limits, and the avahi static service file that
// publishes it. join-advertise writes the file; join-service's registrar
// reads the TXT records it browses with Parse. Both sides share this one
// definition, so a record the writer accepts is one the reader accepts.
package advert

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"

	"github.com/nodejoin/nodejoin/internal/hostname"
	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/problem"
)

// ServiceType is the DNS-SD type every advert is published under.
const ServiceType = "_nodejoin._tcp"

// ServiceFile is the node path of the one advert a machine publishes.
const ServiceFile = "/etc/avahi/services/nodejoin.service"

// Version is the TXT record's txtvers.
const Version = "1"

// Limits of the record. RFC 6763 section 6.4 asks for keys of at most 9
// bytes; section 6.2 for a record that fits a packet with the rest of the
// answer: 400 bytes keeps it well inside one (DNS-SD's own "should be under
// 200" is for many-key records; ours has at most eight).
const (
	MaxKey    = 9
	MaxRecord = 400
	MaxRole   = 16
)

// Roles known to the registrar; others are carried and listed but never
// registered (a future role a newer machine advertises).
const (
	RoleMaster = "master"
	RoleNode   = "node"
)

// States an advert announces.
const (
	Ready      = "ready"      // ready to be registered as Name (with parent Parent)
	Registered = "registered" // registered as Name: children may go on
)

// Advert is one machine's advert.
type Advert struct {
	Role    string `json:"role"`
	Cluster string `json:"cluster"`
	Name    string `json:"name"`
	Parent  string `json:"parent,omitempty"`
	// HostKey is the SSH host key's SHA-256 fingerprint ("SHA256:…", as
	// ssh-keygen -l prints it).
	HostKey string `json:"host_key_fingerprint"`
	// Pin is the cluster certificate's SPKI pin ("sha256:<hex>"), masters
	// only.
	Pin   string `json:"pin,omitempty"`
	State string `json:"state"`
}

// TXT returns the record's strings in the order of the issue: txtvers,
// role, cluster, name, parent, hkfp, pin, state. Empty parent and pin are
// left out.
func (a Advert) TXT() []string {
	out := []string{"txtvers=" + Version, "role=" + a.Role, "cluster=" + a.Cluster, "name=" + a.Name}
	if a.Parent != "" {
		out = append(out, "parent="+a.Parent)
	}
	out = append(out, "hkfp="+a.HostKey)
	if a.Pin != "" {
		out = append(out, "pin="+a.Pin)
	}
	return append(out, "state="+a.State)
}

// Size is the record's wire size: each string with its length byte.
func Size(txt []string) int {
	n := 0
	for _, s := range txt {
		n += 1 + len(s)
	}
	return n
}

// Check returns what is wrong with a, each problem named by the JSON
// pointer of join-advertise's document.
func (a Advert) Check() error {
	if ps := a.problems(jsonPointer); len(ps) > 0 {
		return &problem.RejectedError{Problems: ps}
	}
	return nil
}

// Where a problem is: join-advertise's document names fields by JSON
// pointer, a browsed record by its TXT key.
var (
	jsonPointer = map[string]string{"role": "/role", "cluster": "/cluster", "name": "/name", "parent": "/parent",
		"hkfp": "/host_key_fingerprint", "pin": "/pin", "state": "/state", "": ""}
	txtKey = map[string]string{"role": "TXT role", "cluster": "TXT cluster", "name": "TXT name", "parent": "TXT parent",
		"hkfp": "TXT hkfp", "pin": "TXT pin", "state": "TXT state", "": "TXT record"}
)

func (a Advert) problems(names map[string]string) []problem.Problem {
	var ps []problem.Problem
	bad := func(key, format string, args ...any) {
		ps = append(ps, problem.Problem{Where: names[key], What: fmt.Sprintf(format, args...)})
	}
	if err := checkRole(a.Role); err != nil {
		bad("role", "%v", err)
	}
	if err := hostname.Check(a.Cluster); err != nil {
		bad("cluster", "not a host name: %v", err)
	}
	if err := hostname.Check(a.Name); err != nil {
		bad("name", "not a host name: %v", err)
	}
	if a.Parent != "" {
		if err := hostname.Check(a.Parent); err != nil {
			bad("parent", "not a host name: %v", err)
		} else if a.Parent == a.Name {
			bad("parent", "a machine cannot be its own parent")
		}
	}
	if a.Role == RoleMaster && a.Parent != "" {
		bad("parent", "a master has no parent")
	}
	if err := CheckHostKey(a.HostKey); err != nil {
		bad("hkfp", "%v", err)
	}
	switch {
	case a.Role == RoleMaster && a.Pin == "":
		bad("pin", "a master's advert carries the cluster certificate's pin")
	case a.Role != RoleMaster && a.Pin != "":
		bad("pin", "only a master's advert carries a pin")
	case a.Pin != "":
		if p, err := joinapi.ParsePin(a.Pin); err != nil {
			bad("pin", "%v", err)
		} else if p != a.Pin {
			bad("pin", "write it in lower case (%s)", p)
		}
	}
	if a.State != Ready && a.State != Registered {
		bad("state", "%q is neither %q nor %q", clip(a.State), Ready, Registered)
	}
	if len(ps) == 0 {
		if n := Size(a.TXT()); n > MaxRecord {
			bad("", "the TXT record would be %d bytes, at most %d: shorten the names", n, MaxRecord)
		}
	}
	return ps
}

func checkRole(r string) error {
	if r == "" || len(r) > MaxRole {
		return fmt.Errorf("want 1 to %d letters, digits or '-' (%q, %q, ...)", MaxRole, RoleMaster, RoleNode)
	}
	for i := 0; i < len(r); i++ {
		if c := r[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0) {
			return fmt.Errorf("%q: want lower-case letters, digits or '-' (%q, %q, ...)", clip(r), RoleMaster, RoleNode)
		}
	}
	return nil
}

// CheckHostKey accepts an SSH SHA-256 fingerprint: "SHA256:" and 43
// characters of unpadded base64 (32 bytes).
func CheckHostKey(fp string) error {
	b, ok := strings.CutPrefix(fp, "SHA256:")
	if !ok {
		return fmt.Errorf("%q is not an SSH SHA-256 fingerprint (SHA256:... as ssh-keygen -l prints it)", clip(fp))
	}
	if raw, err := base64.RawStdEncoding.DecodeString(b); err != nil || len(raw) != 32 {
		return fmt.Errorf("%q: want 43 characters of base64 after SHA256: (32 bytes)", clip(fp))
	}
	return nil
}

// Parse reads a browsed TXT record. Keys are matched without case (RFC
// 6763 section 6.4), the first of a repeated key counts (section 6.4),
// unknown keys are ignored (a newer writer may add some); the known ones
// are checked as Check does.
func Parse(txt []string) (Advert, error) {
	if n := Size(txt); n > MaxRecord*2 {
		return Advert{}, fmt.Errorf("TXT record of %d bytes, at most %d", n, MaxRecord*2)
	}
	seen := map[string]string{}
	for _, s := range txt {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" || len(k) > MaxKey {
			continue
		}
		k = strings.ToLower(k)
		if _, dup := seen[k]; !dup {
			seen[k] = v
		}
	}
	if v := seen["txtvers"]; v != Version {
		return Advert{}, fmt.Errorf("txtvers %q, want %q", clip(v), Version)
	}
	a := Advert{Role: seen["role"], Cluster: seen["cluster"], Name: seen["name"], Parent: seen["parent"],
		HostKey: seen["hkfp"], Pin: seen["pin"], State: seen["state"]}
	if ps := a.problems(txtKey); len(ps) > 0 {
		return a, &problem.RejectedError{Problems: ps}
	}
	return a, nil
}

// ServiceXML is the avahi static service file (avahi.service(5)) that
// publishes a on port. The instance name is the machine's name (its first
// 63 bytes, DNS-SD's limit); avahi renames it on a collision, and the
// registrar keys records by the TXT's name, never by the instance name.
func ServiceXML(a Advert, port int) []byte {
	var b bytes.Buffer
	esc := func(s string) string {
		var e bytes.Buffer
		_ = xml.EscapeText(&e, []byte(s)) // writes to a buffer
		return e.String()
	}
	inst := a.Name
	if len(inst) > 63 {
		inst = inst[:63]
	}
	b.WriteString("<?xml version=\"1.0\" standalone=\"no\"?>\n")
	b.WriteString("<!DOCTYPE service-group SYSTEM \"avahi-service.dtd\">\n")
	b.WriteString("<!-- written by join-advertise(8); see doc/join-advertise.8.md -->\n")
	b.WriteString("<service-group>\n")
	b.WriteString("  <name>" + esc(inst) + "</name>\n")
	b.WriteString("  <service>\n")
	b.WriteString("    <type>" + ServiceType + "</type>\n")
	b.WriteString("    <port>" + strconv.Itoa(port) + "</port>\n")
	for _, t := range a.TXT() {
		b.WriteString("    <txt-record>" + esc(t) + "</txt-record>\n")
	}
	b.WriteString("  </service>\n")
	b.WriteString("</service-group>\n")
	return b.Bytes()
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
