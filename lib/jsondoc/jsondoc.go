// Package jsondoc reads one JSON document strictly: at most MaxSize bytes of
// valid UTF-8, one object with no duplicate keys and nothing after it,
// checked against its JSON Schema first and then decoded into a Go type.
//
// Every problem is a cli.RejectedError (exit 3) whose text names a JSON
// pointer or a byte offset, never the input itself: documents carry private
// keys, and Ganeti's tools printed the whole input on a parse error.
package jsondoc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/nodejoin/nodejoin/lib/cli"
)

// MaxSize is the largest document accepted (1 MiB).
const MaxSize = 1 << 20

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
		return cli.Reject("", "the document is larger than 1 MiB")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return cli.Reject("", "the document is empty; expected one JSON object")
	}
	if !utf8.Valid(data) {
		// encoding/json would silently replace the bad bytes with U+FFFD.
		return cli.Reject("", "byte %d: not valid UTF-8", invalidUTF8At(data))
	}
	doc, err := parse(data)
	if err != nil {
		return err
	}
	if err := schema.Validate(doc); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return &cli.RejectedError{Problems: leafProblems(ve)}
		}
		return fmt.Errorf("checking the schema: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		// The schema should have caught this; the message names a field and a
		// Go type, never a value.
		return cli.Reject("", "%v", err)
	}
	return nil
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
// which encoding/json would accept (last key wins).
func parse(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	p := &parser{dec: dec, data: data}
	v, err := p.value("")
	if err != nil {
		return nil, err
	}
	end := p.offset()
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, cli.Reject("", "byte %d: data after the end of the JSON document", skipSpace(data, end))
	}
	return v, nil
}

type parser struct {
	dec  *json.Decoder
	data []byte
}

func (p *parser) offset() int64 { return p.dec.InputOffset() }

func (p *parser) syntaxError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return cli.Reject("", "byte %d: the JSON document ends too early", len(p.data))
	}
	// The token reader's offsets lag behind; a plain decode of the same
	// bytes points at the offending character. Its text quotes input
	// characters, so only the position is kept.
	off := p.offset()
	var v any
	var se *json.SyntaxError
	if uerr := json.Unmarshal(p.data, &v); errors.As(uerr, &se) {
		off = se.Offset - 1
	}
	line, col := lineCol(p.data, off)
	return cli.Reject("", "line %d, column %d: not valid JSON", line, col)
}

// skipSpace moves off past JSON whitespace, to the token it points at.
func skipSpace(data []byte, off int64) int64 {
	for off < int64(len(data)) && strings.IndexByte(" \t\r\n", data[off]) >= 0 {
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

func (p *parser) value(ptr string) (any, error) {
	tok, err := p.dec.Token()
	if err != nil {
		return nil, p.syntaxError(err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := map[string]any{}
			for p.dec.More() {
				kt, err := p.dec.Token()
				if err != nil {
					return nil, p.syntaxError(err)
				}
				k := kt.(string)
				kp := ptr + "/" + escapePointer(k)
				if _, dup := obj[k]; dup {
					return nil, cli.Reject(kp, "duplicate key")
				}
				v, err := p.value(kp)
				if err != nil {
					return nil, err
				}
				obj[k] = v
			}
			if _, err := p.dec.Token(); err != nil {
				return nil, p.syntaxError(err)
			}
			return obj, nil
		case '[':
			arr := []any{}
			for i := 0; p.dec.More(); i++ {
				v, err := p.value(ptr + "/" + strconv.Itoa(i))
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			if _, err := p.dec.Token(); err != nil {
				return nil, p.syntaxError(err)
			}
			return arr, nil
		}
		return nil, p.syntaxError(errors.New("unexpected delimiter"))
	default:
		return t, nil
	}
}

func escapePointer(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// leafProblems flattens a validation error to its leaves, one problem each,
// in a stable order. Messages of missing and unknown properties are turned
// around to name the property's own pointer.
func leafProblems(ve *jsonschema.ValidationError) []cli.Problem {
	var out []cli.Problem
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		out = append(out, rephrase(e.InstanceLocation, e.Message)...)
	}
	walk(ve)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Where < out[j].Where })
	uniq := out[:0]
	for i, p := range out {
		if i == 0 || p != out[i-1] {
			uniq = append(uniq, p)
		}
	}
	return uniq
}

func rephrase(loc, msg string) []cli.Problem {
	where := loc
	if where == "" {
		where = "/"
	}
	var names []string
	var what string
	switch {
	case strings.HasPrefix(msg, "missing properties: "):
		names, what = quotedNames(strings.TrimPrefix(msg, "missing properties: ")), "required key is missing"
	case strings.HasPrefix(msg, "additionalProperties ") && strings.HasSuffix(msg, " not allowed"):
		names, what = quotedNames(strings.TrimSuffix(strings.TrimPrefix(msg, "additionalProperties "), " not allowed")), "unknown key"
	case strings.HasPrefix(msg, "property '") && strings.Contains(msg, "' is required, if '"):
		// dependentRequired: "property 'a' is required, if 'b' property exists"
		parts := strings.Split(msg, "'")
		if len(parts) >= 4 {
			names, what = []string{parts[1]}, "required key is missing, since "+parts[3]+" is given"
			break
		}
		return []cli.Problem{{Where: where, What: msg}}
	default:
		return []cli.Problem{{Where: where, What: msg}}
	}
	out := make([]cli.Problem, len(names))
	for i, n := range names {
		out[i] = cli.Problem{Where: loc + "/" + escapePointer(n), What: what}
	}
	return out
}

// quotedNames splits "'a', 'b'" into a and b.
func quotedNames(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ", ") {
		out = append(out, strings.Trim(part, "'"))
	}
	return out
}
