package jsonschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

const base = "https://example.org/s/"

// compileDocs compiles base+"main.json" from docs, by file name.
func compileDocs(t *testing.T, docs map[string]string) (*Schema, error) {
	t.Helper()
	load := func(url string) ([]byte, error) {
		name, ok := strings.CutPrefix(url, base)
		if !ok {
			return nil, fmt.Errorf("%s: not here", url)
		}
		d, ok := docs[name]
		if !ok {
			return nil, fmt.Errorf("%s: no such schema", url)
		}
		return []byte(d), nil
	}
	formats := map[string]Format{"even": func(s string) error {
		if len(s)%2 != 0 {
			return errors.New("odd length")
		}
		return nil
	}}
	return NewCompiler(load, formats).Compile(base + "main.json")
}

func mustCompile(t *testing.T, schema string) *Schema {
	t.Helper()
	s, err := compileDocs(t, map[string]string{"main.json": schema})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func decode(t *testing.T, doc string) any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(doc))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%s: %v", doc, err)
	}
	return v
}

// show is the errors as "where keyword[key]: message" lines.
func show(errs []Error) string {
	var lines []string
	for _, e := range errs {
		l := e.Where + " " + e.Keyword
		if e.Key != "" {
			l += "[" + e.Key + "]"
		}
		if e.Given != "" {
			l += "(" + e.Given + ")"
		}
		if e.Err != nil {
			l += " (" + e.Err.Error() + ")"
		}
		lines = append(lines, l+": "+e.Message)
	}
	return strings.Join(lines, "\n")
}

// Each keyword on a value it accepts ("" wanted) and on ones it refuses,
// with the errors in the order they come.
func TestKeywords(t *testing.T) {
	for _, tc := range []struct {
		name, schema, doc, want string
	}{
		{"type ok", `{"type": "string"}`, `"x"`, ""},
		{"type", `{"type": "string"}`, `1`, " type: expected string, but got number"},
		{"type list", `{"type": ["string", "null"]}`, `null`, ""},
		{"type list bad", `{"type": ["string", "null"]}`, `true`, " type: expected string or null, but got boolean"},
		{"integer", `{"type": "integer"}`, `3`, ""},
		{"integer 1.0", `{"type": "integer"}`, `1.0`, ""},
		{"integer 1e2", `{"type": "integer"}`, `1e2`, ""},
		{"integer 15e-1", `{"type": "integer"}`, `15e-1`, " type: expected integer, but got number"},
		{"integer 1.5", `{"type": "integer"}`, `1.5`, " type: expected integer, but got number"},
		{"integer huge exponent", `{"type": "integer"}`, `1e1000000001`, ""},
		{"integer tiny exponent", `{"type": "integer"}`, `1e-1000000001`, " type: expected integer, but got number"},
		{"number", `{"type": "number"}`, `1.5`, ""},
		{"array", `{"type": "array"}`, `{}`, " type: expected array, but got object"},
		{"object", `{"type": "object"}`, `[]`, " type: expected object, but got array"},
		{"boolean", `{"type": "boolean"}`, `"true"`, " type: expected boolean, but got string"},
		{"type stops the rest", `{"type": "string", "enum": ["a"], "minLength": 3}`, `1`, " type: expected string, but got number"},

		{"const", `{"const": "generate"}`, `"generate"`, ""},
		{"const bad", `{"const": "generate"}`, `"gen"`, ` const: value must be "generate"`},
		{"const number", `{"const": 1}`, `1.0`, ""},
		{"const object", `{"const": {"a": [1]}}`, `{"a": [1.0]}`, ""},
		{"const object bad", `{"const": {"a": [1]}}`, `{"a": [2]}`, ` const: const failed`},

		{"enum", `{"enum": ["a", "b"]}`, `"b"`, ""},
		{"enum bad", `{"enum": ["a", "b"]}`, `"c"`, ` enum: value must be one of "a", "b"`},
		{"enum one", `{"enum": ["a"]}`, `"c"`, ` enum: value must be "a"`},
		{"enum type", `{"enum": ["1"]}`, `1`, ` enum: value must be "1"`},
		{"enum not primitive", `{"enum": ["a", [1]]}`, `[2]`, ` enum: enum failed`},
		{"enum null", `{"enum": [null, true]}`, `false`, ` enum: value must be one of <nil>, true`},

		{"format", `{"format": "even"}`, `"ab"`, ""},
		{"format bad", `{"format": "even"}`, `"abc"`, ` format (odd length): not of the format 'even'`},
		{"format not string", `{"format": "even"}`, `1`, ""},

		{"minLength", `{"minLength": 2}`, `"ab"`, ""},
		{"minLength bad", `{"minLength": 2}`, `"a"`, ` minLength: length must be >= 2, but got 1`},
		{"minLength code points", `{"minLength": 3}`, `"éé"`, ` minLength: length must be >= 3, but got 2`},
		{"maxLength code points", `{"maxLength": 2}`, `"éé"`, ""},
		{"maxLength bad", `{"maxLength": 2}`, `"abc"`, ` maxLength: length must be <= 2, but got 3`},
		{"length not string", `{"minLength": 2}`, `1`, ""},

		{"pattern", `{"pattern": "^[a-z]+$"}`, `"abc"`, ""},
		{"pattern bad", `{"pattern": "^[a-z]+$"}`, `"aBc"`, ` pattern: does not match pattern '^[a-z]+$'`},
		{"pattern unanchored", `{"pattern": "b"}`, `"abc"`, ""},
		{"pattern quoted", `{"pattern": "^[^\\s']+$"}`, `"a b"`, ` pattern: does not match pattern '^[^\\s\']+$'`},

		{"minimum", `{"minimum": 1}`, `1`, ""},
		{"minimum bad", `{"minimum": 1}`, `0`, ` minimum: must be >= 1 but found 0`},
		{"minimum decimal", `{"minimum": 1}`, `0.99`, ` minimum: must be >= 1 but found 0.99`},
		{"minimum exponent", `{"minimum": 1}`, `1e-1`, ` minimum: must be >= 1 but found 1e-1`},
		{"minimum negative", `{"minimum": -1}`, `-2`, ` minimum: must be >= -1 but found -2`},
		{"maximum", `{"maximum": 65535}`, `65535.0`, ""},
		{"maximum bad", `{"maximum": 65535}`, `65536`, ` maximum: must be <= 65535 but found 65536`},
		{"maximum as a float", `{"maximum": 1000000}`, `1000001`, ` maximum: must be <= 1e+06 but found 1000001`},
		{"maximum huge", `{"maximum": 10}`, `1e999999999999999999999`, ` maximum: must be <= 10 but found 1e999999999999999999999`},
		{"minimum huge negative", `{"minimum": -10}`, `-1e999999999999999999999`, ` minimum: must be >= -10 but found -1e999999999999999999999`},
		{"number not number", `{"minimum": 1}`, `"0"`, ""},

		{"minItems", `{"minItems": 1}`, `[1]`, ""},
		{"minItems bad", `{"minItems": 1}`, `[]`, ` minItems: minimum 1 items required, but found 0 items`},
		{"maxItems bad", `{"maxItems": 1}`, `[1, 2]`, ` maxItems: maximum 1 items required, but found 2 items`},
		{"uniqueItems", `{"uniqueItems": true}`, `["a", "b", 1, [1], {"a": 1}]`, ""},
		{"uniqueItems bad", `{"uniqueItems": true}`, `["a", "b", "c", "b", "a", "c"]`, ` uniqueItems: items at index 1 and 3 are equal`},
		{"uniqueItems numbers", `{"uniqueItems": true}`, `[1, 10e-1]`, ` uniqueItems: items at index 0 and 1 are equal`},
		{"uniqueItems objects", `{"uniqueItems": true}`, `[{"a": 1, "b": [2]}, {"b": [2], "a": 1}]`, ` uniqueItems: items at index 0 and 1 are equal`},
		{"uniqueItems types", `{"uniqueItems": true}`, `["1", 1, null, false, "null", "false"]`, ""},
		{"uniqueItems false", `{"uniqueItems": false}`, `[1, 1]`, ""},

		{"items", `{"items": {"type": "string"}}`, `["a", 1, "b", 2]`,
			"/1 type: expected string, but got number\n/3 type: expected string, but got number"},
		{"prefixItems", `{"prefixItems": [{"type": "string"}, {"type": "integer"}]}`, `[1, "a", {}]`,
			"/0 type: expected string, but got number\n/1 type: expected integer, but got string"},
		{"prefixItems and items", `{"prefixItems": [{"type": "string"}], "items": {"type": "integer"}}`, `["a", 1, "b"]`,
			"/2 type: expected integer, but got string"},
		{"prefixItems short", `{"prefixItems": [{"type": "string"}, {"type": "integer"}]}`, `["a"]`, ""},

		{"required", `{"required": ["a", "b", "c"]}`, `{"b": 1}`,
			" required[a]: missing properties: 'a'\n required[c]: missing properties: 'c'"},
		{"required not object", `{"required": ["a"]}`, `[]`, ""},
		{"properties", `{"properties": {"a": {"type": "string"}, "b~/c": {"type": "string"}}}`, `{"a": 1, "b~/c": 2, "d": 3}`,
			"/a type: expected string, but got number\n/b~0~1c type: expected string, but got number"},
		{"additionalProperties false", `{"properties": {"a": {}}, "additionalProperties": false}`, `{"a": 1, "z": 2, "b": 3}`,
			" additionalProperties[b]: additionalProperties 'b' not allowed\n additionalProperties[z]: additionalProperties 'z' not allowed"},
		{"additionalProperties true", `{"additionalProperties": true}`, `{"a": 1}`, ""},
		{"additionalProperties schema", `{"properties": {"a": {}}, "additionalProperties": {"type": "string"}}`, `{"a": 1, "b": 2, "c": "x", "": 3}`,
			"/ type: expected string, but got number\n/b type: expected string, but got number"},
		{"propertyNames", `{"propertyNames": {"minLength": 2}}`, `{"ab": 1, "c": 2, "a/b": 3}`,
			"/c minLength: length must be >= 2, but got 1"},
		// Plain JSON pointers (v5 percent-encoded them: /node%201).
		{"pointers", `{"additionalProperties": {"type": "string"}}`, `{"node 1": 1, "é": 2, "a/b~": 3, "%41": 4}`,
			"/%41 type: expected string, but got number\n/a~1b~0 type: expected string, but got number\n/node 1 type: expected string, but got number\n/é type: expected string, but got number"},
		{"propertyNames enum", `{"propertyNames": {"enum": ["a"]}}`, `{"b": 1}`, `/b enum: value must be "a"`},
		{"minProperties", `{"minProperties": 1}`, `{}`, " minProperties: minimum 1 properties allowed, but found 0 properties"},
		{"maxProperties", `{"maxProperties": 1}`, `{"a": 1, "b": 2}`, " maxProperties: maximum 1 properties allowed, but found 2 properties"},
		{"dependentRequired", `{"dependentRequired": {"bits": ["type", "size"]}}`, `{"bits": 1, "size": 2}`,
			" dependentRequired[type](bits): property 'type' is required, if 'bits' property exists"},
		{"dependentRequired absent", `{"dependentRequired": {"bits": ["type"]}}`, `{"size": 2}`, ""},
		{"object keywords in order", `{"type": "object", "minProperties": 3, "required": ["a"], "properties": {"b": {"type": "string"}}, "additionalProperties": false}`,
			`{"b": 1, "c": 2}`,
			" minProperties: minimum 3 properties allowed, but found 2 properties\n required[a]: missing properties: 'a'\n/b type: expected string, but got number\n additionalProperties[c]: additionalProperties 'c' not allowed"},

		{"$ref", `{"$ref": "#/$defs/s", "$defs": {"s": {"type": "string"}}}`, `1`, " type: expected string, but got number"},
		{"$ref after siblings", `{"$ref": "#/$defs/s", "minLength": 5, "$defs": {"s": {"pattern": "^a"}}}`, `"bc"`,
			" minLength: length must be >= 5, but got 2\n pattern: does not match pattern '^a'"},
		{"$ref root", `{"properties": {"a": {"$ref": "#"}}, "required": ["x"]}`, `{"x": 1, "a": {"a": {}}}`,
			"/a required[x]: missing properties: 'x'\n/a/a required[x]: missing properties: 'x'"},
		{"$ref escaped", `{"$ref": "#/$defs/a~1b", "$defs": {"a/b": {"type": "string"}}}`, `1`, " type: expected string, but got number"},

		{"anyOf", `{"anyOf": [{"type": "string"}, {"type": "integer"}]}`, `1`, ""},
		{"anyOf bad", `{"anyOf": [{"type": "string", "format": "even"}, {"type": "integer"}]}`, `"abc"`,
			" format (odd length): not of the format 'even'\n type: expected integer, but got string"},
		{"oneOf", `{"oneOf": [{"const": "generate"}, {"type": "object", "required": ["k"]}]}`, `{"k": 1}`, ""},
		{"oneOf none", `{"oneOf": [{"const": "generate"}, {"type": "object", "required": ["k"]}]}`, `{}`,
			" const: value must be \"generate\"\n required[k]: missing properties: 'k'"},
		{"oneOf none type", `{"oneOf": [{"const": "generate"}, {"type": "object"}]}`, `5`,
			" const: value must be \"generate\"\n type: expected object, but got number"},
		{"oneOf two", `{"oneOf": [{"type": "array"}, {"minItems": 1}, {"type": "string"}]}`, `[1]`,
			" oneOf: valid against schemas at indexes 0 and 1"},
		{"oneOf two after a failure", `{"oneOf": [{"type": "string"}, {"type": "array"}, {"minItems": 1}]}`, `[1]`,
			" oneOf: valid against schemas at indexes 1 and 2"},
		{"if then", `{"if": {"properties": {"a": {"const": "c"}}, "required": ["a"]}, "then": {"required": ["n"]}}`, `{"a": "c"}`,
			" required[n]: missing properties: 'n'"},
		{"if false", `{"if": {"properties": {"a": {"const": "c"}}, "required": ["a"]}, "then": {"required": ["n"]}}`, `{"a": "d"}`, ""},
		{"if alone", `{"if": {"type": "string"}}`, `1`, ""},

		{"annotations", `{"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "https://example.org/s/main.json", "title": "t", "description": "d"}`, `1`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustCompile(t, tc.schema)
			if got := show(s.Validate(decode(t, tc.doc))); got != tc.want {
				t.Errorf("schema %s, document %s: got\n%s\nwant\n%s", tc.schema, tc.doc, got, tc.want)
			}
		})
	}
}

// A schema refers to another document by its URL, relative to its own.
func TestRefAcrossDocuments(t *testing.T) {
	s, err := compileDocs(t, map[string]string{
		"main.json": `{"properties": {"h": {"$ref": "other.json#/$defs/host"}, "o": {"$ref": "other.json"}}}`,
		"other.json": `{"$id": "https://example.org/s/other.json", "type": "object", "required": ["x"],
			"$defs": {"host": {"type": "string", "format": "even"}}}`,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := show(s.Validate(decode(t, `{"h": "abc", "o": {}}`)))
	want := "/h format (odd length): not of the format 'even'\n/o required[x]: missing properties: 'x'"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// Two documents that refer to each other.
	s, err = compileDocs(t, map[string]string{
		"main.json": `{"properties": {"b": {"$ref": "b.json"}}, "$defs": {"n": {"type": "integer"}}}`,
		"b.json":    `{"properties": {"n": {"$ref": "main.json#/$defs/n"}, "main": {"$ref": "main.json"}}}`,
	})
	if err != nil {
		t.Fatal(err)
	}
	got = show(s.Validate(decode(t, `{"b": {"n": "x", "main": {"b": {"n": 1.5}}}}`)))
	// Properties go in the order of their names.
	want = "/b/main/b/n type: expected integer, but got number\n/b/n type: expected integer, but got string"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// What the validator does not implement does not compile, so no rule is
// ever ignored; nor does a keyword of the wrong shape.
func TestCompileRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		docs   map[string]string
		substr string
	}{
		{"unknown keyword", map[string]string{"main.json": `{"type": "object", "patternProperties": {}}`}, `keyword "patternProperties" is not supported`},
		{"nested unknown keyword", map[string]string{"main.json": `{"properties": {"a": {"items": {"contains": {}}}}}`}, `main.json#/properties/a/items: keyword "contains" is not supported`},
		{"unused definition", map[string]string{"main.json": `{"$defs": {"x": {"not": {}}}}`}, `#/$defs/x: keyword "not" is not supported`},
		{"else", map[string]string{"main.json": `{"if": {}, "then": {}, "else": {}}`}, `keyword "else" is not supported`},
		{"then alone", map[string]string{"main.json": `{"then": {}}`}, `then without if`},
		{"unknown format", map[string]string{"main.json": `{"format": "email"}`}, `format "email" is not supported`},
		{"boolean schema", map[string]string{"main.json": `{"properties": {"a": true}}`}, `boolean schemas are not supported`},
		{"draft", map[string]string{"main.json": `{"$schema": "http://json-schema.org/draft-07/schema#"}`}, `$schema must be`},
		{"nested $schema", map[string]string{"main.json": `{"items": {"$schema": "https://json-schema.org/draft/2020-12/schema"}}`}, `only supported at the root`},
		{"nested $id", map[string]string{"main.json": `{"items": {"$id": "x.json"}}`}, `only supported at the root`},
		{"other $id", map[string]string{"main.json": `{"$id": "https://example.org/s/other.json"}`}, `$id must be the schema's URL`},
		{"type name", map[string]string{"main.json": `{"type": "int"}`}, `unknown type "int"`},
		{"type shape", map[string]string{"main.json": `{"type": 1}`}, `not a type`},
		{"negative count", map[string]string{"main.json": `{"minLength": -1}`}, `not a non-negative integer`},
		{"fractional count", map[string]string{"main.json": `{"maxItems": 1.5}`}, `not a non-negative integer`},
		{"minimum shape", map[string]string{"main.json": `{"minimum": "1"}`}, `not a number`},
		{"bad pattern", map[string]string{"main.json": `{"pattern": "(?<=a)b"}`}, `pattern: error parsing regexp`},
		{"required twice", map[string]string{"main.json": `{"required": ["a", "a"]}`}, `"a" is listed twice`},
		{"empty enum", map[string]string{"main.json": `{"enum": []}`}, `not a non-empty list`},
		{"empty anyOf", map[string]string{"main.json": `{"anyOf": []}`}, `not a non-empty list of schemas`},
		{"items list", map[string]string{"main.json": `{"items": [{}]}`}, `not an object`},
		{"dependentRequired shape", map[string]string{"main.json": `{"dependentRequired": {"a": "b"}}`}, `a: not a list of names`},
		{"ref to nothing", map[string]string{"main.json": `{"$ref": "#/$defs/none"}`}, `#/$defs/none: no schema there`},
		{"ref to a non-schema", map[string]string{"main.json": `{"$ref": "#/$defs", "$defs": {}}`}, `no schema there`},
		{"ref anchor", map[string]string{"main.json": `{"$ref": "#top"}`}, `only JSON pointer fragments`},
		{"ref missing document", map[string]string{"main.json": `{"$ref": "none.json"}`}, `none.json: no such schema`},
		{"ref elsewhere", map[string]string{"main.json": `{"$ref": "https://example.com/x.json"}`}, `not here`},
		{"ref bad document", map[string]string{"main.json": `{"$ref": "b.json"}`, "b.json": `{"minItems": "2"}`}, `b.json#: minItems: not a number`},
		{"ref loop", map[string]string{"main.json": `{"$ref": "#"}`}, `refers to itself without going into the value`},
		{"ref loop through anyOf", map[string]string{"main.json": `{"properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {"anyOf": [{"$ref": "#/$defs/y"}]}, "y": {"oneOf": [{"$ref": "#/$defs/x"}]}}}`}, `refers to itself without going into the value`},
		{"not json", map[string]string{"main.json": `{"type": `}, `unexpected EOF`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compileDocs(t, tc.docs)
			if err == nil || !strings.Contains(err.Error(), tc.substr) {
				t.Errorf("got %v, want an error with %q", err, tc.substr)
			}
		})
	}
}

// A recursive schema that goes into the value compiles, and ends with
// the document.
func TestRecursion(t *testing.T) {
	s := mustCompile(t, `{"type": "array", "items": {"$ref": "#"}}`)
	doc := strings.Repeat("[", 50) + "1" + strings.Repeat("]", 50)
	want := "/" + strings.TrimSuffix(strings.Repeat("0/", 50), "/") + " type: expected array, but got number"
	if got := show(s.Validate(decode(t, doc))); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestNotJSONValue(t *testing.T) {
	s := mustCompile(t, `{"items": {}}`)
	if got := show(s.Validate([]any{1.5})); got != "/0 type: not a JSON value (Go type float64)" {
		t.Errorf("got %s", got)
	}
}

func TestDecimal(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		cmp  int
	}{
		{"0", "-0", 0}, {"0", "0.0e5", 0}, {"1", "1.0", 0}, {"1", "10e-1", 0}, {"100", "1e2", 0},
		{"1", "2", -1}, {"-1", "-2", 1}, {"-1", "1", -1}, {"0.5", "0", 1}, {"-0.5", "0", -1},
		{"0.123", "0.13", -1}, {"12", "9", 1}, {"1e10", "9999999999", 1}, {"1e-10", "0", 1},
		{"1e999999999999999999999", "1e999999999999999999998", 1}, {"123.45", "12345e-2", 0},
	} {
		a, err := parseDecimal(tc.a)
		if err != nil {
			t.Fatal(err)
		}
		b, err := parseDecimal(tc.b)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.cmp(b); got != tc.cmp {
			t.Errorf("cmp(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.cmp)
		}
		if got := b.cmp(a); got != -tc.cmp {
			t.Errorf("cmp(%s, %s) = %d, want %d", tc.b, tc.a, got, -tc.cmp)
		}
		if (a.key() == b.key()) != (tc.cmp == 0) {
			t.Errorf("keys %s, %s", a.key(), b.key())
		}
	}
	for _, bad := range []string{"", "-", "01", "1.", ".1", "1e", "1e+", "+1", "1x", "0x10", "1.2.3", "--1", "1e1.5"} {
		if _, err := parseDecimal(bad); err == nil {
			t.Errorf("%q: parsed", bad)
		}
	}
}

// A document as large as jsondoc allows (16384 values) costs its size:
// uniqueItems does not compare every pair, and a huge exponent is not
// expanded.
func TestLargeInputs(t *testing.T) {
	s := mustCompile(t, `{"uniqueItems": true, "items": {"type": "integer", "maximum": 5}}`)
	var b bytes.Buffer
	b.WriteString("[")
	for i := range 16000 {
		fmt.Fprintf(&b, `%d,`, i)
	}
	b.WriteString(`1e999999999]`)
	errs := s.Validate(decode(t, b.String()))
	if len(errs) != 15995 || errs[0].Where != "/6" || errs[len(errs)-1].Message != "must be <= 5 but found 1e999999999" {
		t.Errorf("%d errors, first %v, last %v", len(errs), errs[0], errs[len(errs)-1])
	}
}

// A compiled schema is only read while checking (go test -race).
func TestConcurrentValidate(t *testing.T) {
	s := mustCompile(t, `{"properties": {"a": {"anyOf": [{"type": "string", "pattern": "^x"}, {"type": "integer"}]}}, "additionalProperties": false}`)
	docs := []any{decode(t, `{"a": "y", "b": 1}`), decode(t, `{"a": 1}`)}
	want := []string{show(s.Validate(docs[0])), show(s.Validate(docs[1]))}
	type result struct {
		i   int
		got string
	}
	done := make(chan result, 8)
	for i := range 8 {
		go func() { done <- result{i, show(s.Validate(docs[i%2]))} }()
	}
	for range 8 {
		if r := <-done; r.got != want[r.i%2] {
			t.Errorf("run %d: got %s, want %s", r.i, r.got, want[r.i%2])
		}
	}
}
