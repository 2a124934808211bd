package advert

import (
	"encoding/xml"
	"slices"
	"strings"
	"testing"
)

const (
	fp  = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
	pin = "sha256:3f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8"
)

func node() Advert {
	return Advert{Role: RoleNode, Cluster: "cluster.example.org", Name: "node1.example.org", Parent: "rack1.example.org", HostKey: fp, State: Ready}
}

func TestTXTOrderAndKeys(t *testing.T) {
	m := Advert{Role: RoleMaster, Cluster: "c.example.org", Name: "m.example.org", HostKey: fp, Pin: pin, State: Registered}
	for _, tc := range []struct {
		a    Advert
		keys []string
	}{
		{node(), []string{"txtvers", "role", "cluster", "name", "parent", "hkfp", "state"}},
		{m, []string{"txtvers", "role", "cluster", "name", "hkfp", "pin", "state"}},
	} {
		var keys []string
		for _, s := range tc.a.TXT() {
			k, _, _ := strings.Cut(s, "=")
			if len(k) > MaxKey {
				t.Errorf("key %q longer than %d bytes", k, MaxKey)
			}
			keys = append(keys, k)
		}
		if !slices.Equal(keys, tc.keys) {
			t.Errorf("keys %v, want %v", keys, tc.keys)
		}
		if err := tc.a.Check(); err != nil {
			t.Errorf("Check: %v", err)
		}
		got, err := Parse(tc.a.TXT())
		if err != nil || got != tc.a {
			t.Errorf("Parse(TXT()) = %+v, %v; want %+v", got, err, tc.a)
		}
	}
}

func TestCheck(t *testing.T) {
	long := strings.Repeat("a", 60)
	long = long + "." + long + "." + long // 182 bytes
	for _, tc := range []struct {
		name  string
		edit  func(*Advert)
		where string
	}{
		{"role", func(a *Advert) { a.Role = "Node" }, "/role: "},
		{"cluster", func(a *Advert) { a.Cluster = "a b" }, "/cluster: not a host name"},
		{"name", func(a *Advert) { a.Name = "" }, "/name: not a host name"},
		{"self parent", func(a *Advert) { a.Parent = a.Name }, "/parent: a machine cannot be its own parent"},
		{"fingerprint", func(a *Advert) { a.HostKey = "MD5:aa" }, "/host_key_fingerprint: "},
		{"short fingerprint", func(a *Advert) { a.HostKey = "SHA256:abc" }, "/host_key_fingerprint: "},
		{"pin on a node", func(a *Advert) { a.Pin = pin }, "/pin: only a master"},
		{"master without pin", func(a *Advert) { a.Role, a.Parent = RoleMaster, "" }, "/pin: a master's advert carries"},
		{"master with parent", func(a *Advert) { a.Role, a.Pin = RoleMaster, pin }, "/parent: a master has no parent"},
		{"upper-case pin", func(a *Advert) { a.Role, a.Parent, a.Pin = RoleMaster, "", strings.ToUpper(pin[:7])+pin[7:] }, "/pin: "},
		{"state", func(a *Advert) { a.State = "done" }, "/state: "},
		{"too long", func(a *Advert) { a.Name, a.Cluster = long, long }, "invalid input: the TXT record would be "},
	} {
		a := node()
		tc.edit(&a)
		err := a.Check()
		if err == nil || !strings.Contains(err.Error(), tc.where) {
			t.Errorf("%s: Check = %v, want %q", tc.name, err, tc.where)
		}
	}
	// The longest names that fit: the record is then at most MaxRecord.
	a := node()
	a.Name, a.Cluster = long, "c.example.org"
	if err := a.Check(); err != nil || Size(a.TXT()) > MaxRecord {
		t.Errorf("Check = %v with a %d-byte record", err, Size(a.TXT()))
	}
}

func TestParse(t *testing.T) {
	txt := node().TXT()
	// keys without case, the first of a repeated key, unknown keys ignored
	mixed := append([]string{"TXTVERS=1", "Role=node", "future=x", "noequals"}, txt[2:]...)
	mixed = append(mixed, "name=other.example.org")
	a, err := Parse(mixed)
	if err != nil || a.Name != "node1.example.org" {
		t.Fatalf("Parse = %+v, %v", a, err)
	}
	for _, tc := range []struct {
		txt  []string
		want string
	}{
		{txt[1:], "txtvers"},
		{append([]string{"txtvers=2"}, txt[1:]...), "txtvers \"2\""},
		{slices.Replace(slices.Clone(txt), 5, 6, "hkfp=x"), "TXT hkfp: "},
		{[]string{strings.Repeat("x", 900)}, "TXT record of"},
	} {
		if _, err := Parse(tc.txt); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want %q", tc.txt, err, tc.want)
		}
	}
}

func TestServiceXML(t *testing.T) {
	a := node()
	var doc struct {
		Name    string `xml:"name"`
		Service struct {
			Type string   `xml:"type"`
			Port int      `xml:"port"`
			TXT  []string `xml:"txt-record"`
		} `xml:"service"`
	}
	if err := xml.Unmarshal(ServiceXML(a, 22), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Name != a.Name || doc.Service.Type != ServiceType || doc.Service.Port != 22 || !slices.Equal(doc.Service.TXT, a.TXT()) {
		t.Errorf("service file reads back as %+v", doc)
	}
}
