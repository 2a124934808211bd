package joindoc

import (
	"strings"
	"testing"
)

// A node may run a newer version than the master: keys the master does not
// know are ignored, but a result without a key the master acts on, or with
// data after it, is refused.
func TestDecodeResultVersionSkew(t *testing.T) {
	for _, tc := range []struct {
		name, in, wantErr string
	}{
		{"newer node", `{"program":"prepare-node-join","changed":true,"dry_run":false,"files":[],"restarted":["sshd"],"reboot_required":false,"new_fact":{"a":1}}`, ""},
		{"fewer optional keys", `{"program":"node-daemon-setup","changed":false}`, ""},
		{"no changed", `{"program":"prepare-node-join","files":[]}`, `reading the result: "changed" is missing`},
		{"no program", `{"changed":true}`, `reading the result: "program" is missing`},
		{"null", `null`, `reading the result: "program" is missing`},
		{"trailing", `{"program":"p","changed":true} {}`, `reading the result: data after the JSON object`},
		{"wrong type", `{"program":"p","changed":"yes"}`, `reading the result: json: cannot unmarshal string into Go struct field Result.changed of type bool`},
	} {
		res, err := DecodeResult(strings.NewReader(tc.in))
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
		case tc.wantErr == "" && res.Program == "":
			t.Errorf("%s: program not decoded", tc.name)
		}
	}
}
