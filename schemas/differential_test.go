package schemas_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	v5 "github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/hostname"
	"github.com/nodejoin/nodejoin/internal/jsondoc"
	"github.com/nodejoin/nodejoin/internal/problem"
	"github.com/nodejoin/nodejoin/schemas"
)

// The schemas' own validator says what santhosh-tekuri/jsonschema v5 (and
// jsondoc's wording of its errors) said before it, on every embedded
// schema: the same documents accepted, and the same problems, in the same
// order, for the others. The documents are the fixtures', the testscripts'
// and variants of those each schema accepts: every value replaced by
// values of other types, every key removed, a key added.
//
// The differences made on purpose are left out: v5's pointers are
// compared unescaped, as v5 percent-encodes them (a key "a b" is at
// /a%20b), which no JSON pointer does; v5 checks the ipv4 and ipv6
// formats with jsondoc's checks, as its own ipv4 took "+1.2.3.4" and
// "00.0.0.0" (strconv.Atoi). FuzzSameAsV5 leaves out more.
func TestSameAsV5(t *testing.T) {
	if testing.Short() {
		t.Skip("differential test")
	}
	names := schemaNames(t)
	ref := newV5(t)
	docs := corpus(t)
	var compared, accepted, mutated int
	for _, name := range names {
		var valid [][]byte
		for _, d := range docs {
			if compare(t, ref, name, d) {
				valid = append(valid, d)
			}
			compared++
		}
		if len(valid) == 0 {
			t.Errorf("%s: no document of the corpus is valid, so none is varied", name)
		}
		accepted += len(valid)
		for _, d := range valid {
			for _, m := range mutations(t, d) {
				compare(t, ref, name, m)
				mutated++
			}
		}
	}
	t.Logf("%d schemas, %d documents (%d valid for their schema), %d variants", len(names), compared, accepted, mutated)
}

// compare checks doc against schema name with both validators and says
// whether it is valid.
func compare(t testing.TB, ref *v5.Compiler, name string, doc []byte) bool {
	t.Helper()
	var v any
	got := problemsOf(jsondoc.DecodeBytes(doc, schemas.Get(name), &v))
	want := v5Problems(t, ref, name, doc)
	if !equalProblems(got, want) {
		t.Errorf("%s on %s:\ngot  %v\nwant %v", name, doc, got, want)
	}
	return len(want) == 0
}

func problemsOf(err error) []problem.Problem {
	if err == nil {
		return nil
	}
	var rej *problem.RejectedError
	if errors.As(err, &rej) {
		return rej.Problems
	}
	return []problem.Problem{{What: "not a rejection: " + err.Error()}}
}

func equalProblems(a, b []problem.Problem) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func schemaNames(t testing.TB) []string {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			names = append(names, e.Name())
		}
	}
	return names
}

// corpus is every JSON object of the fixtures and of the testscripts'
// files (cmd/*/testdata/*.txtar), once each.
func corpus(t testing.TB) [][]byte {
	c, err := fixture.NewCluster("cluster.nodejoin.test")
	if err != nil {
		t.Fatal(err)
	}
	raw := [][]byte{
		fixture.JSON(c.Prepare()),
		fixture.JSON(c.DaemonSetup("node1.cluster.nodejoin.test")),
		// ssconf-update, ssl-update: no testscript has one as a file.
		fixture.JSON(map[string]any{"cluster_name": c.Name, "ssconf": map[string]string{"cluster_name": c.Name, "node_list": "a\nb"}}),
		fixture.JSON(map[string]any{"cluster_name": c.Name, "node_daemon_certificate": string(c.ServerPEM), "action": "create", "node_name": "node1." + c.Name}),
		fixture.JSON(map[string]any{"cluster_name": c.Name, "node_daemon_certificate": string(c.ServerPEM), "action": "delete"}),
	}
	archives, err := filepath.Glob("../cmd/*/testdata/*.txtar")
	if err != nil || len(archives) == 0 {
		t.Fatalf("no testscripts: %v", err)
	}
	for _, file := range archives {
		a, err := txtar.ParseFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range a.Files {
			raw = append(raw, f.Data)
		}
	}
	seen := map[string]bool{}
	var out [][]byte
	for _, d := range raw {
		var v any
		if json.Unmarshal(d, &v) != nil {
			continue
		}
		if _, ok := v.(map[string]any); !ok {
			continue
		}
		b, _ := json.Marshal(v)
		if !seen[string(b)] {
			seen[string(b)] = true
			out = append(out, d)
		}
	}
	return out
}

// replacements stand in for every value of a document in turn: one of
// each type, and values at the edges of the schemas' rules.
var replacements = []any{
	nil, true, json.Number("0"), json.Number("-1"), json.Number("1.5"), json.Number("1.0"), json.Number("1e2"),
	json.Number("70000"), json.Number("1e6"), "", "x", "a b", "Upper", "node1.example.org", "-bad-.name", "10.0.0.1", "::1",
	"generate", "add", "rsa", "/abs/path", strings.Repeat("é", 300),
	[]any{}, []any{""}, []any{"x", "x"}, []any{[]any{"a"}}, []any{"rsa", "k", "p"},
	map[string]any{}, map[string]any{"a": json.Number("1")},
}

// mutations are the variants of doc: each value replaced by each
// replacement, each key removed, a key added to each object.
func mutations(t testing.TB, doc []byte) [][]byte {
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var root any
	if err := d.Decode(&root); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	emit := func() {
		b, err := json.Marshal(root)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	// walk visits the value at *slot; set puts a value there.
	var walk func(v any, set func(any), depth int)
	walk = func(v any, set func(any), depth int) {
		if depth > 0 {
			for _, r := range replacements {
				set(r)
				emit()
			}
			set(v)
		}
		switch v := v.(type) {
		case map[string]any:
			for _, k := range sortedKeys(v) {
				old := v[k]
				delete(v, k)
				emit()
				v[k] = old
				walk(old, func(x any) { v[k] = x }, depth+1)
			}
			for _, k := range []string{"extra", "a b", "x/y~z"} {
				if _, ok := v[k]; !ok {
					v[k] = []any{json.Number("1")}
					emit()
					delete(v, k)
				}
			}
		case []any:
			for i := range v {
				walk(v[i], func(x any) { v[i] = x }, depth+1)
			}
		}
	}
	walk(root, func(any) {}, 0)
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// FuzzSameAsV5 is TestSameAsV5 on any document, on every schema. Left
// out besides: documents jsondoc refuses before any schema (too deep, too
// many values; duplicate keys are dropped by decoding and encoding again),
// keys that v5 misplaced or misquoted ("" is told at its object's
// pointer; a ' or an unprintable character broke jsondoc's reading of
// v5's quoted names; a % would be unescaped), and numbers of large
// exponents: v5 crashed on 1e1000001 (math/big refuses the exponent, v5
// used the nil) and spent 80 ms on each 1e999999.
func FuzzSameAsV5(f *testing.F) {
	ref := newV5(f)
	names := schemaNames(f)
	for _, d := range corpus(f) {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := json.NewDecoder(bytes.NewReader(data))
		d.UseNumber()
		var v any
		if d.Decode(&v) != nil {
			return
		}
		if n, ok := fits(v, 0); !ok || n > jsondoc.MaxValues {
			return
		}
		doc, err := json.Marshal(v)
		if err != nil {
			return
		}
		for _, name := range names {
			compare(t, ref, name, doc)
		}
	})
}

// fits says whether v is within jsondoc's depth and has only keys v5 told
// right, and counts its values.
func fits(v any, depth int) (int, bool) {
	n := 1
	switch v := v.(type) {
	case json.Number:
		return 1, !bigExponent(v)
	case map[string]any:
		if depth >= jsondoc.MaxDepth {
			return 0, false
		}
		for k, x := range v {
			q := strings.ReplaceAll(strconv.Quote(k), `\"`, `"`)
			if k == "" || q[1:len(q)-1] != k || strings.ContainsAny(k, "'%") {
				return 0, false
			}
			m, ok := fits(x, depth+1)
			if !ok {
				return 0, false
			}
			n += m
		}
	case []any:
		if depth >= jsondoc.MaxDepth {
			return 0, false
		}
		for _, x := range v {
			m, ok := fits(x, depth+1)
			if !ok {
				return 0, false
			}
			n += m
		}
	}
	return n, true
}

// bigExponent says whether n's exponent is beyond ±999.
func bigExponent(n json.Number) bool {
	i := strings.IndexAny(string(n), "eE")
	if i < 0 {
		return false
	}
	e := strings.TrimLeft(string(n)[i+1:], "+-0")
	return len(e) > 3
}

// The reference: v5 as schemas.Get set it up, and jsondoc's wording of
// its errors, as they were before the schemas got their own validator.

const base = "https://github.com/nodejoin/nodejoin/schemas/"

func newV5(t testing.TB) *v5.Compiler {
	c := v5.NewCompiler()
	c.Draft = v5.Draft2020
	c.AssertFormat = true
	for name, check := range jsondoc.FormatChecks() {
		c.Formats[name] = func(v any) bool {
			s, ok := v.(string)
			return !ok || check(s) == nil
		}
	}
	c.LoadURL = func(u string) (io.ReadCloser, error) {
		name, ok := strings.CutPrefix(u, base)
		if !ok {
			return nil, fmt.Errorf("%s: not an embedded schema", u)
		}
		data, err := schemas.Source(name)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(data)), nil
	}
	return c
}

func v5Problems(t testing.TB, c *v5.Compiler, name string, doc []byte) []problem.Problem {
	s, err := c.Compile(base + name)
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	err = s.Validate(v)
	if err == nil {
		return nil
	}
	var ve *v5.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("%s on %s: %v", name, doc, err)
	}
	return v5LeafProblems(ve, v)
}

func v5LeafProblems(ve *v5.ValidationError, doc any) []problem.Problem {
	var out []problem.Problem
	var walk func(e *v5.ValidationError)
	walk = func(e *v5.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		e.InstanceLocation = unescapeV5(e.InstanceLocation)
		if path.Base(e.KeywordLocation) == "format" {
			out = append(out, v5FormatProblem(e, doc))
			return
		}
		out = append(out, v5Rephrase(e)...)
	}
	walk(ve)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Where < out[j].Where })
	uniq := out[:0]
	for i, p := range out {
		if i == 0 || p != out[i-1] {
			uniq = append(uniq, p)
		}
	}
	if len(uniq) > 20 {
		more := len(uniq) - 20
		uniq = append(uniq[:20], problem.Problem{What: fmt.Sprintf("and %d more problems", more)})
	}
	return uniq
}

// unescapeV5 undoes v5's percent-encoding of each segment of a pointer.
func unescapeV5(ptr string) string {
	segs := strings.Split(ptr, "/")
	for i, s := range segs {
		if u, err := url.PathUnescape(s); err == nil {
			segs[i] = u
		}
	}
	return strings.Join(segs, "/")
}

func v5FormatProblem(e *v5.ValidationError, doc any) problem.Problem {
	name := strings.Trim(e.Message[strings.LastIndex(e.Message, " ")+1:], "'")
	if name == "hostname" {
		if s, ok := lookup(doc, e.InstanceLocation).(string); ok {
			if err := hostname.Check(s); err != nil {
				return problem.Problem{Where: e.InstanceLocation, What: "not a host name: " + err.Error()}
			}
		}
	}
	return problem.Problem{Where: e.InstanceLocation, What: "not of the format " + strconv.Quote(name)}
}

// lookup is the value at the JSON pointer ptr in doc, or nil.
func lookup(doc any, ptr string) any {
	if ptr == "" {
		return doc
	}
	v := doc
	for _, seg := range strings.Split(ptr[1:], "/") {
		seg = jsondoc.UnescapePointer(seg)
		switch t := v.(type) {
		case map[string]any:
			v = t[seg]
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(t) {
				return nil
			}
			v = t[i]
		default:
			return nil
		}
	}
	return v
}

func v5Rephrase(e *v5.ValidationError) []problem.Problem {
	loc, msg := e.InstanceLocation, e.Message
	where := loc
	if where == "" {
		where = "/"
	}
	var names []string
	for _, m := range quotedName.FindAllStringSubmatch(msg, -1) {
		names = append(names, m[1])
	}
	var what string
	kw := strings.Split(e.KeywordLocation, "/")
	switch n := len(kw); {
	case kw[n-1] == "required":
		what = "required key is missing"
	case kw[n-1] == "additionalProperties":
		what = "unknown key"
	case n >= 3 && kw[n-3] == "dependentRequired" && len(names) > 0:
		names, what = names[:1], "required key is missing, since "+jsondoc.UnescapePointer(kw[n-2])+" is given"
	}
	if what == "" || len(names) == 0 {
		return []problem.Problem{{Where: where, What: msg}}
	}
	out := make([]problem.Problem, len(names))
	for i, n := range names {
		out[i] = problem.Problem{Where: loc + "/" + jsondoc.EscapePointer(n), What: what}
	}
	return out
}

var quotedName = regexp.MustCompile(`'([^']*)'`)
