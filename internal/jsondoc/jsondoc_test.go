package jsondoc

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nodejoin/nodejoin/internal/jsonschema"
	"github.com/nodejoin/nodejoin/internal/problem"
)

const testSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "required": ["name"],
  "properties": {
    "name": {"type": "string", "minLength": 1},
    "secret": {"type": "string"},
    "n": {"type": "integer", "minimum": 1},
    "host": {"type": "string", "format": "hostname"},
    "list": {"type": "array", "items": {"enum": ["a", "b"]}}
  }
}`

type testDoc struct {
	Name   string   `json:"name"`
	Host   string   `json:"host"`
	Secret string   `json:"secret"`
	N      int      `json:"n"`
	List   []string `json:"list"`
}

func compileTest(t testing.TB) *jsonschema.Schema {
	load := func(string) ([]byte, error) { return []byte(testSchema), nil }
	s, err := jsonschema.NewCompiler(load, FormatChecks()).Compile("https://example.org/test.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDecode(t *testing.T) {
	s := compileTest(t)
	for _, tc := range []struct {
		name, in, wantErr string
	}{
		{"ok", `{"name": "x", "n": 2, "list": ["a"]}`, ""},
		{"empty", "", "invalid input: the document is empty; expected one JSON object"},
		{"blank", " \n\t", "invalid input: the document is empty; expected one JSON object"},
		{"utf8", "{\"name\": \"a\xffb\"}", "invalid input: byte 11: not valid UTF-8"},
		{"syntax", `{"name": nope}`, "invalid input: line 1, column 11: not valid JSON"},
		{"syntax line 2", "{\"name\": \"x\",\n \"n\": }", "invalid input: line 2, column 7: not valid JSON"},
		{"truncated", `{"name": "x"`, "invalid input: byte 12: the JSON document ends too early"},
		{"trailing", `{"name": "x"} x`, "invalid input: byte 14: data after the end of the JSON document"},
		{"two docs", `{"name": "x"}{"name": "y"}`, "invalid input: byte 13: data after the end of the JSON document"},
		{"duplicate", `{"name": "x", "name": "y"}`, "invalid input: /name: duplicate key"},
		{"nested duplicate", `{"name": "x", "list": [{"a": 1, "a": 2}]}`, "invalid input: /list/0/a: duplicate key"},
		{"not object", `["x"]`, "invalid input: /: expected object, but got array"},
		{"missing", `{}`, "invalid input: /name: required key is missing"},
		{"unknown", `{"name": "x", "extra": 1, "more": 2}`, "invalid input: /extra: unknown key\ninvalid input: /more: unknown key"},
		{"type", `{"name": 3}`, "invalid input: /name: expected string, but got number"},
		{"enum", `{"name": "x", "list": ["c"]}`, `invalid input: /list/0: value must be one of "a", "b"`},
		{"min", `{"name": "x", "n": 0}`, "invalid input: /n: must be >= 1 but found 0"},
		{"float", `{"name": "x", "n": 1.5}`, "invalid input: /n: expected integer, but got number"},
		// v5's math/big refused the exponent, and it crashed on the nil.
		{"huge exponent", `{"name": "x", "n": 1e1000001}`, "invalid input: json: cannot unmarshal number 1e1000001 into Go struct field testDoc.n of type int"},
		{"huge exponent below minimum", `{"name": "x", "n": -1e1000001}`, "invalid input: /n: must be >= 1 but found -1e1000001"},
		{"several", `{"n": "x"}`, "invalid input: /n: expected integer, but got string\ninvalid input: /name: required key is missing"},
		// A format's problem says why, without the value.
		{"host", `{"name": "x", "host": "n1.example.org"}`, ""},
		{"bad host", `{"name": "x", "host": "n1\u0000/CN=master"}`,
			"invalid input: /host: not a host name: byte 2 (0x00) is not a letter, digit, '-' or '.'"},
		{"host type", `{"name": "x", "host": 1}`, "invalid input: /host: expected string, but got number"},
		// 64 levels are read (and refused by the schema); the 65th is refused
		// where it opens, before the schema validator walks anything.
		{"depth 64", `{"name": "x", "list": ` + nest("[", 63) + nest("]", 63) + `}`,
			"invalid input: /list/0: value must be one of \"a\", \"b\""},
		{"depth 65", `{"name": "x", "list": ` + nest("[", 64) + nest("]", 64) + `}`,
			"invalid input: byte 85: arrays and objects nest deeper than 64 levels"},
		{"deep objects", nest(`{"a":`, 65) + "1" + nest("}", 65),
			"invalid input: byte 320: arrays and objects nest deeper than 64 levels"},
		{"deep unclosed", nest("[", 100), "invalid input: byte 64: arrays and objects nest deeper than 64 levels"},
		// The object, the name, the list and its items are values.
		{"values", `{"name": "x", "list": [` + strings.Repeat(`"a", `, MaxValues-4) + `"a"]}`, ""},
		{"too many values", `{"name": "x", "list": [` + strings.Repeat(`"a", `, MaxValues-3) + `"a"]}`,
			"invalid input: byte 81928: more than 16384 values in the document"},
		{"many problems", `{"name": "x", "list": [` + strings.Repeat(`"c", `, 30) + `"c"]}`,
			manyProblems()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d testDoc
			err := DecodeBytes([]byte(tc.in), s, &d)
			got := ""
			if err != nil {
				got = err.Error()
				var rej *problem.RejectedError
				if !errors.As(err, &rej) {
					t.Errorf("error is not a rejection (exit 3): %T", err)
				}
			}
			if got != tc.wantErr {
				t.Errorf("got error\n%s\nwant\n%s", got, tc.wantErr)
			}
		})
	}
}

func nest(s string, n int) string { return strings.Repeat(s, n) }

// manyProblems is the answer to a list of 31 bad values: the first 20 (in
// the validator's order, sorted by pointer), then a count of the rest.
func manyProblems() string {
	var lines []string
	for _, i := range []int{0, 1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 2, 20, 21, 22, 23, 24, 25, 26} {
		lines = append(lines, fmt.Sprintf(`invalid input: /list/%d: value must be one of "a", "b"`, i))
	}
	return strings.Join(append(lines, "invalid input: and 11 more problems"), "\n")
}

func TestDecodeTooLarge(t *testing.T) {
	in := `{"name": "` + strings.Repeat("a", MaxSize) + `"}`
	var d testDoc
	err := Decode(strings.NewReader(in), compileTest(t), &d)
	if err == nil || err.Error() != "invalid input: the document is larger than 1 MiB" {
		t.Fatalf("got %v", err)
	}
}

// A refused document's error never shows its values.
func TestDecodeNeverEchoes(t *testing.T) {
	const secret = "S3CR3T-PRIVATE-MATERIAL"
	s := compileTest(t)
	for _, in := range []string{
		`{"secret": "` + secret + `"}`,
		`{"name": "x", "secret": "` + secret + `", "secret": "` + secret + `"}`,
		`{"name": "x", "secret": "` + secret + `", "list": ["` + secret + `"]}`,
		`{"name": "x", "secret": ` + secret + `}`,
		`{"name": "x", "secret": "` + secret + `"} "` + secret + `"`,
		`{"name": ["` + secret + `"]}`,
		`{"name": "x", "host": "` + secret + `_"}`,
	} {
		var d testDoc
		err := DecodeBytes([]byte(in), s, &d)
		if err == nil {
			t.Errorf("%s: accepted", in)
		} else if strings.Contains(err.Error(), "S3CR3T") {
			t.Errorf("error echoes the input: %v", err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, seed := range []string{`{"name": "x"}`, `{"name": "x", "list": ["a", "b"], "n": 3}`, `{"a":1,"a":2}`, `[]`, `{"name":"\u00e9"}`,
		`{"name": "x", "list": ` + nest("[", 64) + nest("]", 64) + `}`, `{"name": "x", "host": "a..b"}`} {
		f.Add([]byte(seed))
	}
	s := compileTest(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var d testDoc
		err := DecodeBytes(data, s, &d)
		if err != nil {
			var rej *problem.RejectedError
			if !errors.As(err, &rej) {
				t.Fatalf("non-rejection error %v", err)
			}
			return
		}
		// Accepted documents are valid UTF-8 JSON with a name.
		if d.Name == "" || !bytes.Contains(data, []byte("name")) {
			t.Fatalf("accepted %q without a name", data)
		}
	})
}
