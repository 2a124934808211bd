// Package jsondoc reads one JSON document strictly: at most MaxSize bytes of
// valid UTF-8, one object with no duplicate keys and nothing after it,
// checked against its JSON Schema first and then decoded into a Go type.
//
// Every problem is a problem.RejectedError (exit 3) whose text names a JSON
// pointer or a byte offset, never the input itself: documents carry private
// keys, and Ganeti's tools printed the whole input on a parse error.
package jsondoc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/nodejoin/nodejoin/internal/hostname"
	"github.com/nodejoin/nodejoin/internal/problem"
)

// Limits of a document, far above any real one (the deepest is three
// levels deep; the largest, the authorized_keys of a cluster of a few
// hundred nodes, holds about a thousand values), so that a hostile document
// cannot make a program or noded spend more than a bounded multiple of its
// size: the schema validator allocates about a kilobyte per bad value.
const (
	MaxSize   = 1 << 20 // bytes
	MaxDepth  = 64      // levels of arrays and objects
	MaxValues = 1 << 14 // values of every kind, containers included
)

// Decode reads r to its end and decodes the document into v after checking
// it against schema. v must be a pointer to a struct whose fields cover the
// schema's properties.
func Decode(r io.Reader, schema *jsonschema.Schema, v any) error {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return fmt.Errorf("reading standard input: %w", err)
	}
	return DecodeBytes(data, schema, v)
}

// DecodeBytes is Decode of a document already in memory.
func DecodeBytes(data []byte, schema *jsonschema.Schema, v any) error {
	if len(data) > MaxSize {
		return problem.Reject("", "the document is larger than 1 MiB")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return problem.Reject("", "the document is empty; expected one JSON object")
	}
	if !utf8.Valid(data) {
		// encoding/json would silently replace the bad bytes with U+FFFD.
		return problem.Reject("", "byte %d: not valid UTF-8", invalidUTF8At(data))
	}
	doc, err := parse(data)
	if err != nil {
		return err
	}
	if err := schema.Validate(doc); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return &problem.RejectedError{Problems: leafProblems(ve, doc)}
		}
		return fmt.Errorf("checking the schema: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		// The schema should have caught this; the message names a field and a
		// Go type, never a value.
		return problem.Reject("", "%v", err)
	}
	return nil
}

// formats are the string formats the schemas use, each with the check that
// says why a value is not of it. The validator's own message quotes the
// value, so it is never shown.
var formats = map[string]struct {
	noun  string
	check func(string) error
}{
	"hostname": {"a host name", hostname.Check},
}

// AddFormats makes c assert the formats the schemas use, with the same
// checks that explain a refusal.
func AddFormats(c *jsonschema.Compiler) {
	c.AssertFormat = true
	for name, f := range formats {
		c.Formats[name] = func(v any) bool {
			s, ok := v.(string)
			return !ok || f.check(s) == nil
		}
	}
}

// formatProblem explains a value that is not of its format, from the value
// at the error's location in doc. The validator's message ends in the
// format's name: "<value> is not valid 'hostname'".
func formatProblem(e *jsonschema.ValidationError, doc any) problem.Problem {
	name := e.Message[strings.LastIndex(e.Message, " ")+1:]
	name = strings.Trim(name, "'")
	if f, ok := formats[name]; ok {
		if s, ok := lookup(doc, e.InstanceLocation).(string); ok {
			if err := f.check(s); err != nil {
				return problem.Problem{Where: e.InstanceLocation, What: fmt.Sprintf("not %s: %v", f.noun, err)}
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
		seg = pointerUnescaper.Replace(seg)
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

// InFile names the file a rejected document came from: each problem's
// location becomes "file:/pointer", or the file alone for a problem of the
// whole document. Other errors are returned as they are.
func InFile(err error, file string) error {
	var rej *problem.RejectedError
	if errors.As(err, &rej) {
		for i, p := range rej.Problems {
			if p.Where == "" {
				rej.Problems[i].Where = file
			} else {
				rej.Problems[i].Where = file + ":" + p.Where
			}
		}
	}
	return err
}

func invalidUTF8At(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// parse decodes data into the generic form the schema validator takes
// (json.Number for numbers), rejecting duplicate keys and trailing data,
// which encoding/json would accept (last key wins), and documents nested
// deeper than MaxDepth or holding more than MaxValues values, before the
// validator (which walks every value) sees them.
func parse(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	p := &parser{dec: dec, data: data}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	end := p.offset()
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, problem.Reject("", "byte %d: data after the end of the JSON document", skipSpace(data, end))
	}
	return v, nil
}

// parser walks the tokens of one document. It keeps where it is as a stack
// of path segments and joins them into a JSON pointer only to report an
// error: a pointer string per value would cost memory in the square of the
// depth.
type parser struct {
	dec    *json.Decoder
	data   []byte
	path   []segment
	values int
}

// segment is one step of a JSON pointer: an object key, or an array index
// when key is nil.
type segment struct {
	key   *string
	index int
}

func (p *parser) offset() int64 { return p.dec.InputOffset() }

// pointer is the JSON pointer of the value the parser is in, plus next.
func (p *parser) pointer(next ...segment) string {
	var b strings.Builder
	for _, s := range append(p.path, next...) {
		b.WriteByte('/')
		if s.key != nil {
			b.WriteString(EscapePointer(*s.key))
		} else {
			b.WriteString(strconv.Itoa(s.index))
		}
	}
	return b.String()
}

func (p *parser) syntaxError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return problem.Reject("", "byte %d: the JSON document ends too early", len(p.data))
	}
	// The token reader's offsets lag behind; a plain decode of the same
	// bytes points at the offending character. Its text quotes input
	// characters, so only the position is kept. (Unmarshal checks the
	// whole input before it builds anything.)
	off := p.offset()
	var v any
	var se *json.SyntaxError
	if uerr := json.Unmarshal(p.data, &v); errors.As(uerr, &se) {
		off = se.Offset - 1
	}
	line, col := lineCol(p.data, off)
	return problem.Reject("", "line %d, column %d: not valid JSON", line, col)
}

// skipSpace moves off past JSON whitespace, to the token it points at.
func skipSpace(data []byte, off int64) int64 {
	return skip(data, off, " \t\r\n")
}

func skip(data []byte, off int64, chars string) int64 {
	for off < int64(len(data)) && strings.IndexByte(chars, data[off]) >= 0 {
		off++
	}
	return off
}

func lineCol(data []byte, off int64) (int, int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

func (p *parser) value() (any, error) {
	// The token starts after the separators that precede it.
	start := skip(p.data, p.offset(), " \t\r\n,:")
	tok, err := p.dec.Token()
	if err != nil {
		return nil, p.syntaxError(err)
	}
	if p.values++; p.values > MaxValues {
		return nil, problem.Reject("", "byte %d: more than %d values in the document", start, MaxValues)
	}
	t, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	if len(p.path) >= MaxDepth {
		return nil, problem.Reject("", "byte %d: arrays and objects nest deeper than %d levels", start, MaxDepth)
	}
	switch t {
	case '{':
		obj := map[string]any{}
		for p.dec.More() {
			kt, err := p.dec.Token()
			if err != nil {
				return nil, p.syntaxError(err)
			}
			k := kt.(string)
			if _, dup := obj[k]; dup {
				return nil, problem.Reject(p.pointer(segment{key: &k}), "duplicate key")
			}
			p.path = append(p.path, segment{key: &k})
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			p.path = p.path[:len(p.path)-1]
			obj[k] = v
		}
		if _, err := p.dec.Token(); err != nil {
			return nil, p.syntaxError(err)
		}
		return obj, nil
	case '[':
		arr := []any{}
		for i := 0; p.dec.More(); i++ {
			p.path = append(p.path, segment{index: i})
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			p.path = p.path[:len(p.path)-1]
			arr = append(arr, v)
		}
		if _, err := p.dec.Token(); err != nil {
			return nil, p.syntaxError(err)
		}
		return arr, nil
	}
	return nil, p.syntaxError(errors.New("unexpected delimiter"))
}

// pointerEscaper escapes a key for a JSON pointer (RFC 6901); built once,
// as a Replacer costs kilobytes.
var (
	pointerEscaper   = strings.NewReplacer("~", "~0", "/", "~1")
	pointerUnescaper = strings.NewReplacer("~1", "/", "~0", "~")
)

// EscapePointer escapes one key for a JSON pointer: "~" as "~0", "/" as "~1".
func EscapePointer(s string) string { return pointerEscaper.Replace(s) }

// UnescapePointer is the inverse of EscapePointer.
func UnescapePointer(s string) string { return pointerUnescaper.Replace(s) }

// leafProblems flattens a validation error to its leaves, one problem each,
// in a stable order. Missing and unknown properties are turned around to
// name the property's own pointer.
func leafProblems(ve *jsonschema.ValidationError, doc any) []problem.Problem {
	var out []problem.Problem
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		if path.Base(e.KeywordLocation) == "format" {
			out = append(out, formatProblem(e, doc))
			return
		}
		out = append(out, rephrase(e)...)
	}
	walk(ve)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Where < out[j].Where })
	uniq := out[:0]
	for i, p := range out {
		if i == 0 || p != out[i-1] {
			uniq = append(uniq, p)
		}
	}
	if len(uniq) > maxProblems {
		more := len(uniq) - maxProblems
		uniq = append(uniq[:maxProblems], problem.Problem{What: fmt.Sprintf("and %d more problems", more)})
	}
	return uniq
}

// maxProblems is how many schema problems are reported: a document with
// thousands of bad values gets a short answer.
const maxProblems = 20

// rephrase names the property's own pointer for a missing or unknown
// property. The problem is told by the schema keyword that failed, not by
// the validator's English message, which may change with its version; only
// the property names are taken from the message, where the validator
// quotes them ('a', 'b').
func rephrase(e *jsonschema.ValidationError) []problem.Problem {
	loc, msg := e.InstanceLocation, e.Message
	where := loc
	if where == "" {
		where = "/"
	}
	names := quotedNames(msg)
	var what string
	kw := strings.Split(e.KeywordLocation, "/")
	switch n := len(kw); {
	case kw[n-1] == "required":
		what = "required key is missing"
	case kw[n-1] == "additionalProperties":
		what = "unknown key"
	case n >= 3 && kw[n-3] == "dependentRequired" && len(names) > 0:
		// .../dependentRequired/<given>/<index>: the message quotes the
		// missing key first.
		names, what = names[:1], "required key is missing, since "+UnescapePointer(kw[n-2])+" is given"
	}
	if what == "" || len(names) == 0 {
		return []problem.Problem{{Where: where, What: msg}}
	}
	out := make([]problem.Problem, len(names))
	for i, n := range names {
		out[i] = problem.Problem{Where: loc + "/" + EscapePointer(n), What: what}
	}
	return out
}

// quotedNames returns the names a validator message quotes: 'a', 'b'.
func quotedNames(s string) []string {
	var out []string
	for _, m := range quotedName.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

var quotedName = regexp.MustCompile(`'([^']*)'`)
