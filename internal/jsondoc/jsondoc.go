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
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/nodejoin/nodejoin/internal/hostname"
	"github.com/nodejoin/nodejoin/internal/jsonschema"
	"github.com/nodejoin/nodejoin/internal/problem"
)

// Limits of a document, far above any real one (the deepest is three
// levels deep; the largest, the authorized_keys of a cluster of a few
// hundred nodes, holds about a thousand values), so that a hostile document
// cannot make a program or noded spend more than a bounded multiple of its
// size: the schema validator allocates an error per bad value.
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
	if errs := schema.Validate(doc); len(errs) > 0 {
		return &problem.RejectedError{Problems: leafProblems(errs)}
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
// says why a value is not of it, and the noun that says what it is not
// (none: the format's name is told).
var formats = map[string]struct {
	noun  string
	check func(string) error
}{
	"hostname": {"a host name", hostname.Check},
	"ipv4":     {"", checkIPv4},
	"ipv6":     {"", checkIPv6},
}

// FormatChecks are the formats the schemas may use, for
// jsonschema.NewCompiler.
func FormatChecks() map[string]jsonschema.Format {
	m := make(map[string]jsonschema.Format, len(formats))
	for name, f := range formats {
		m[name] = f.check
	}
	return m
}

// checkIPv4 accepts an IPv4 address in dotted-quad form, without leading
// zeros (which some parsers read as octal).
func checkIPv4(s string) error {
	if a, err := netip.ParseAddr(s); err != nil || !a.Is4() {
		return errors.New("not an IPv4 address")
	}
	return nil
}

// checkIPv6 accepts an IPv6 address (RFC 4291 section 2.2), without a zone.
func checkIPv6(s string) error {
	if a, err := netip.ParseAddr(s); err != nil || !strings.Contains(s, ":") || a.Zone() != "" {
		return errors.New("not an IPv6 address")
	}
	return nil
}

// formatProblem explains a value that is not of its format. The check's
// error describes the value without quoting it.
func formatProblem(e jsonschema.Error) problem.Problem {
	if f, ok := formats[e.Format]; ok && f.noun != "" && e.Err != nil {
		return problem.Problem{Where: e.Where, What: fmt.Sprintf("not %s: %v", f.noun, e.Err)}
	}
	return problem.Problem{Where: e.Where, What: "not of the format " + strconv.Quote(e.Format)}
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

// leafProblems turns the validator's errors into problems, one each, in a
// stable order. Missing and unknown properties are turned around to name
// the property's own pointer.
func leafProblems(errs []jsonschema.Error) []problem.Problem {
	out := make([]problem.Problem, 0, len(errs))
	for _, e := range errs {
		out = append(out, rephrase(e))
	}
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

// rephrase words one error: a missing or unknown property at the
// property's own pointer, a format by its check, anything else in the
// validator's words at the value's pointer ("/" for the whole document).
// It goes by the keyword that failed, never by the message's English.
func rephrase(e jsonschema.Error) problem.Problem {
	switch e.Keyword {
	case "required":
		return problem.Problem{Where: e.Where + "/" + EscapePointer(e.Key), What: "required key is missing"}
	case "additionalProperties":
		return problem.Problem{Where: e.Where + "/" + EscapePointer(e.Key), What: "unknown key"}
	case "dependentRequired":
		return problem.Problem{Where: e.Where + "/" + EscapePointer(e.Key), What: "required key is missing, since " + e.Given + " is given"}
	case "format":
		return formatProblem(e)
	}
	where := e.Where
	if where == "" {
		where = "/"
	}
	return problem.Problem{Where: where, What: e.Message}
}
