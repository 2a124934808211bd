package jsondoc

import (
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/nodejoin/nodejoin/internal/problem"
)

// Problems are told by the keyword that failed, so another wording of the
// validator's messages (a new version of it) gives the same problems.
func TestRephraseByKeyword(t *testing.T) {
	for _, tc := range []struct {
		kw, loc, msg string
		want         []problem.Problem
	}{
		{"/required", "", "missing properties: 'cluster_name'", []problem.Problem{{Where: "/cluster_name", What: "required key is missing"}}},
		{"/required", "/a", "the keys 'x', 'y/z' must be present", []problem.Problem{{Where: "/a/x", What: "required key is missing"}, {Where: "/a/y~1z", What: "required key is missing"}}},
		{"/additionalProperties", "", "additionalProperties 'force' not allowed", []problem.Problem{{Where: "/force", What: "unknown key"}}},
		{"/properties/ssh/additionalProperties", "/ssh", "'force' is not a known property", []problem.Problem{{Where: "/ssh/force", What: "unknown key"}}},
		{"/dependentRequired/ssh_key_bits/0", "", "property 'ssh_key_type' is required, if 'ssh_key_bits' property exists", []problem.Problem{{Where: "/ssh_key_type", What: "required key is missing, since ssh_key_bits is given"}}},
		{"/dependentRequired/ssh_key_bits/0", "", "'ssh_key_type' needed when 'ssh_key_bits' given", []problem.Problem{{Where: "/ssh_key_type", What: "required key is missing, since ssh_key_bits is given"}}},
		{"/properties/x/type", "/x", "expected integer, but got string", []problem.Problem{{Where: "/x", What: "expected integer, but got string"}}},
		{"/required", "", "no names quoted", []problem.Problem{{Where: "/", What: "no names quoted"}}},
	} {
		got := rephrase(&jsonschema.ValidationError{KeywordLocation: tc.kw, InstanceLocation: tc.loc, Message: tc.msg})
		if len(got) != len(tc.want) {
			t.Errorf("%s %q: got %v, want %v", tc.kw, tc.msg, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s %q: got %v, want %v", tc.kw, tc.msg, got, tc.want)
				break
			}
		}
	}
}
