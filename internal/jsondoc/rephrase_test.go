package jsondoc

import (
	"errors"
	"testing"

	"github.com/nodejoin/nodejoin/internal/jsonschema"
	"github.com/nodejoin/nodejoin/internal/problem"
)

// Problems are told by the keyword that failed, so another wording of the
// validator's messages gives the same problems.
func TestRephraseByKeyword(t *testing.T) {
	for _, tc := range []struct {
		err  jsonschema.Error
		want problem.Problem
	}{
		{jsonschema.Error{Keyword: "required", Key: "cluster_name", Message: "missing properties: 'cluster_name'"},
			problem.Problem{Where: "/cluster_name", What: "required key is missing"}},
		{jsonschema.Error{Where: "/a", Keyword: "required", Key: "y/z", Message: "the key 'y/z' must be present"},
			problem.Problem{Where: "/a/y~1z", What: "required key is missing"}},
		{jsonschema.Error{Keyword: "additionalProperties", Key: "force", Message: "additionalProperties 'force' not allowed"},
			problem.Problem{Where: "/force", What: "unknown key"}},
		{jsonschema.Error{Where: "/ssh", Keyword: "additionalProperties", Key: "force", Message: "'force' is not a known property"},
			problem.Problem{Where: "/ssh/force", What: "unknown key"}},
		{jsonschema.Error{Keyword: "dependentRequired", Key: "ssh_key_type", Given: "ssh_key_bits", Message: "'ssh_key_type' needed when 'ssh_key_bits' given"},
			problem.Problem{Where: "/ssh_key_type", What: "required key is missing, since ssh_key_bits is given"}},
		{jsonschema.Error{Where: "/x", Keyword: "type", Message: "expected integer, but got string"},
			problem.Problem{Where: "/x", What: "expected integer, but got string"}},
		{jsonschema.Error{Keyword: "type", Message: "expected object, but got array"},
			problem.Problem{Where: "/", What: "expected object, but got array"}},
		{jsonschema.Error{Where: "/h", Keyword: "format", Format: "hostname", Err: errors.New("empty"), Message: "not of the format 'hostname'"},
			problem.Problem{Where: "/h", What: "not a host name: empty"}},
		{jsonschema.Error{Where: "/ip", Keyword: "format", Format: "ipv4", Err: errors.New("not an IPv4 address"), Message: "not of the format 'ipv4'"},
			problem.Problem{Where: "/ip", What: `not of the format "ipv4"`}},
	} {
		if got := rephrase(tc.err); got != tc.want {
			t.Errorf("%+v: got %v, want %v", tc.err, got, tc.want)
		}
	}
}

// The addresses the ipv4 and ipv6 formats take.
func TestIPFormats(t *testing.T) {
	for _, tc := range []struct {
		s      string
		v4, v6 bool
	}{
		{"192.0.2.1", true, false},
		{"0.0.0.0", true, false},
		{"192.0.2.01", false, false}, // leading zero: octal to some parsers
		{"+1.2.3.4", false, false},
		{"1.2.3", false, false},
		{"256.0.0.1", false, false},
		{"2001:db8::1", false, true},
		{"::ffff:192.0.2.1", false, true},
		{"fe80::1%eth0", false, false},
		{"2001:db8::g", false, false},
		{"", false, false},
	} {
		if got := checkIPv4(tc.s) == nil; got != tc.v4 {
			t.Errorf("ipv4 %q: %v, want %v", tc.s, got, tc.v4)
		}
		if got := checkIPv6(tc.s) == nil; got != tc.v6 {
			t.Errorf("ipv6 %q: %v, want %v", tc.s, got, tc.v6)
		}
	}
}
