// Package jsonschema checks JSON values against JSON Schema 2020-12
// schemas that use only the keywords listed in compilers (the ones
// nodejoin's schemas use). A schema with any other keyword, or a keyword
// of the wrong shape, does not compile: no rule is ever silently ignored.
//
// It exists so that a program that checks a document at each start does
// not pay for a general validator's metaschemas: package init builds only
// the table of keywords, and a schema is compiled only when asked for. Messages are
// worded as github.com/santhosh-tekuri/jsonschema/v5 words them, which
// nodejoin used before.
package jsonschema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Draft is the only $schema a schema may name.
const Draft = "https://json-schema.org/draft/2020-12/schema"

// A Loader returns the text of the schema whose absolute URL (without a
// fragment) is url.
type Loader func(url string) ([]byte, error)

// A Format checks a string: nil, or why the string is not of the format.
type Format func(string) error

// A Compiler compiles schemas and the schemas they refer to, each document
// once. It is not safe for concurrent use.
type Compiler struct {
	load      Loader
	formats   map[string]Format
	resources map[string]*resource
}

// resource is one schema document: its compiled schemas by JSON pointer.
type resource struct {
	url     string
	schemas map[string]*Schema
}

// NewCompiler returns a compiler that reads schemas with load and knows
// the given formats; a schema naming another format does not compile.
func NewCompiler(load Loader, formats map[string]Format) *Compiler {
	return &Compiler{load: load, formats: formats, resources: map[string]*resource{}}
}

// A Schema is a compiled schema, never changed once compiled: Validate is
// safe for concurrent use (noded checks requests in parallel). Each field
// is one keyword; unset ones are zero (-1 for the counts).
type Schema struct {
	loc string // url#pointer, for compile errors

	types         []string
	constant      any
	hasConst      bool
	constMsg      string
	enum          []any
	enumMsg       string
	format        string
	formatCheck   Format
	minLength     int
	maxLength     int
	pattern       *regexp.Regexp
	minimum       *decimal
	maximum       *decimal
	minimumText   string // the bound as v5 prints it (a float64)
	maximumText   string
	minItems      int
	maxItems      int
	uniqueItems   bool
	prefixItems   []*Schema
	items         *Schema
	minProperties int
	maxProperties int
	required      []string
	properties    []property
	propertyNames *Schema
	// additionalProperties: false, or a schema for the other keys
	noAdditional      bool
	additional        *Schema
	dependentRequired []dependency
	ref               *Schema
	refText           string // while compiling
	anyOf             []*Schema
	oneOf             []*Schema
	ifSchema          *Schema
	then              *Schema
}

type property struct {
	name   string
	schema *Schema
}

type dependency struct {
	given    string
	required []string
}

// compilers are the keywords a schema may use, each with what reads it.
// A keyword not here makes the schema fail to compile.
var compilers map[string]func(c *Compiler, s *Schema, r *resource, ptr string, v any) error

func init() {
	// In init, not in the declaration: the functions refer to compilers
	// (through compileSchema), which a declaration may not.
	compilers = map[string]func(c *Compiler, s *Schema, r *resource, ptr string, v any) error{
		"$schema": func(_ *Compiler, _ *Schema, _ *resource, ptr string, v any) error {
			if ptr != "" {
				return fmt.Errorf("$schema is only supported at the root")
			}
			if v != Draft {
				return fmt.Errorf("$schema must be %q", Draft)
			}
			return nil
		},
		"$id": func(_ *Compiler, _ *Schema, r *resource, ptr string, v any) error {
			if ptr != "" {
				return fmt.Errorf("$id is only supported at the root")
			}
			if v != r.url {
				return fmt.Errorf("$id must be the schema's URL %s", r.url)
			}
			return nil
		},
		"$defs": func(c *Compiler, _ *Schema, r *resource, ptr string, v any) error {
			_, err := c.schemaMap(r, ptr+"/$defs", v)
			return err
		},
		"title":       annotation,
		"description": annotation,
		"type": func(_ *Compiler, s *Schema, _ *resource, _ string, v any) error {
			switch t := v.(type) {
			case string:
				s.types = []string{t}
			case []any:
				names, err := stringList(t)
				if err != nil || len(names) == 0 {
					return fmt.Errorf("not a type or a non-empty list of types")
				}
				s.types = names
			default:
				return fmt.Errorf("not a type or a list of types")
			}
			for _, t := range s.types {
				if !isTypeName(t) {
					return fmt.Errorf("unknown type %q", t)
				}
			}
			return nil
		},
		"const": func(_ *Compiler, s *Schema, _ *resource, _ string, v any) error {
			s.constant, s.hasConst = v, true
			if isPrimitive(v) {
				s.constMsg = fmt.Sprintf("value must be %#v", v)
			} else {
				s.constMsg = "const failed"
			}
			return nil
		},
		"enum": func(_ *Compiler, s *Schema, _ *resource, _ string, v any) error {
			list, ok := v.([]any)
			if !ok || len(list) == 0 {
				return fmt.Errorf("not a non-empty list")
			}
			s.enum = list
			s.enumMsg = "enum failed"
			texts := make([]string, len(list))
			for i, item := range list {
				if !isPrimitive(item) {
					return nil
				}
				texts[i] = fmt.Sprintf("%#v", item)
			}
			if len(list) == 1 {
				s.enumMsg = "value must be " + texts[0]
			} else {
				s.enumMsg = "value must be one of " + strings.Join(texts, ", ")
			}
			return nil
		},
		"format": func(c *Compiler, s *Schema, _ *resource, _ string, v any) error {
			name, ok := v.(string)
			if !ok {
				return fmt.Errorf("not a string")
			}
			check, ok := c.formats[name]
			if !ok {
				return fmt.Errorf("format %q is not supported", name)
			}
			s.format, s.formatCheck = name, check
			return nil
		},
		"minLength":     count(func(s *Schema) *int { return &s.minLength }),
		"maxLength":     count(func(s *Schema) *int { return &s.maxLength }),
		"minItems":      count(func(s *Schema) *int { return &s.minItems }),
		"maxItems":      count(func(s *Schema) *int { return &s.maxItems }),
		"minProperties": count(func(s *Schema) *int { return &s.minProperties }),
		"maxProperties": count(func(s *Schema) *int { return &s.maxProperties }),
		"pattern": func(_ *Compiler, s *Schema, _ *resource, _ string, v any) error {
			p, ok := v.(string)
			if !ok {
				return fmt.Errorf("not a string")
			}
			re, err := regexp.Compile(p)
			if err != nil {
				return err
			}
			s.pattern = re
			return nil
		},
		"minimum": func(_ *Compiler, s *Schema, _ *resource, _ string, v any) error {
			var err error
			s.minimum, s.minimumText, err = bound(v)
			return err
		},
		"maximum": func(_ *Compiler, s *Schema, _ *resource, _ string, v any) error {
			var err error
			s.maximum, s.maximumText, err = bound(v)
			return err
		},
		"uniqueItems": func(_ *Compiler, s *Schema, _ *resource, _ string, v any) error {
			b, ok := v.(bool)
			if !ok {
				return fmt.Errorf("not a boolean")
			}
			s.uniqueItems = b
			return nil
		},
		"prefixItems": func(c *Compiler, s *Schema, r *resource, ptr string, v any) error {
			var err error
			s.prefixItems, err = c.schemaList(r, ptr+"/prefixItems", v)
			return err
		},
		"items": func(c *Compiler, s *Schema, r *resource, ptr string, v any) error {
			var err error
			s.items, err = c.compileSchema(r, ptr+"/items", v)
			return err
		},
		"required": func(_ *Compiler, s *Schema, _ *resource, _ string, v any) error {
			list, ok := v.([]any)
			if !ok {
				return fmt.Errorf("not a list of names")
			}
			var err error
			s.required, err = stringList(list)
			return err
		},
		"properties": func(c *Compiler, s *Schema, r *resource, ptr string, v any) error {
			m, err := c.schemaMap(r, ptr+"/properties", v)
			if err != nil {
				return err
			}
			for _, name := range sortedKeys(m) {
				s.properties = append(s.properties, property{name, m[name]})
			}
			return nil
		},
		"propertyNames": func(c *Compiler, s *Schema, r *resource, ptr string, v any) error {
			var err error
			s.propertyNames, err = c.compileSchema(r, ptr+"/propertyNames", v)
			return err
		},
		"additionalProperties": func(c *Compiler, s *Schema, r *resource, ptr string, v any) error {
			if b, ok := v.(bool); ok {
				s.noAdditional = !b
				return nil
			}
			var err error
			s.additional, err = c.compileSchema(r, ptr+"/additionalProperties", v)
			return err
		},
		"dependentRequired": func(_ *Compiler, s *Schema, _ *resource, _ string, v any) error {
			m, ok := v.(map[string]any)
			if !ok {
				return fmt.Errorf("not an object")
			}
			for _, given := range sortedKeys(m) {
				list, ok := m[given].([]any)
				if !ok {
					return fmt.Errorf("%s: not a list of names", given)
				}
				names, err := stringList(list)
				if err != nil {
					return fmt.Errorf("%s: %w", given, err)
				}
				s.dependentRequired = append(s.dependentRequired, dependency{given, names})
			}
			return nil
		},
		"$ref": func(_ *Compiler, s *Schema, _ *resource, _ string, v any) error {
			ref, ok := v.(string)
			if !ok {
				return fmt.Errorf("not a string")
			}
			s.refText = ref
			return nil
		},
		"anyOf": func(c *Compiler, s *Schema, r *resource, ptr string, v any) error {
			var err error
			s.anyOf, err = c.schemaList(r, ptr+"/anyOf", v)
			return err
		},
		"oneOf": func(c *Compiler, s *Schema, r *resource, ptr string, v any) error {
			var err error
			s.oneOf, err = c.schemaList(r, ptr+"/oneOf", v)
			return err
		},
		"if": func(c *Compiler, s *Schema, r *resource, ptr string, v any) error {
			var err error
			s.ifSchema, err = c.compileSchema(r, ptr+"/if", v)
			return err
		},
		"then": func(c *Compiler, s *Schema, r *resource, ptr string, v any) error {
			var err error
			s.then, err = c.compileSchema(r, ptr+"/then", v)
			return err
		},
	}
}

func annotation(_ *Compiler, _ *Schema, _ *resource, _ string, v any) error {
	if _, ok := v.(string); !ok {
		return fmt.Errorf("not a string")
	}
	return nil
}

// count reads a non-negative integer keyword into the field f points at.
func count(f func(*Schema) *int) func(*Compiler, *Schema, *resource, string, any) error {
	return func(_ *Compiler, s *Schema, _ *resource, _ string, v any) error {
		n, ok := v.(json.Number)
		if !ok {
			return fmt.Errorf("not a number")
		}
		i, err := strconv.Atoi(string(n))
		if err != nil || i < 0 {
			return fmt.Errorf("not a non-negative integer")
		}
		*f(s) = i
		return nil
	}
}

// bound reads minimum or maximum, and the text v5 shows it as: the
// nearest float64, printed with %v.
func bound(v any) (*decimal, string, error) {
	n, ok := v.(json.Number)
	if !ok {
		return nil, "", fmt.Errorf("not a number")
	}
	d, err := parseDecimal(string(n))
	if err != nil {
		return nil, "", err
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return nil, "", err
	}
	return d, fmt.Sprint(f), nil
}

// Compile returns the schema at url: an absolute URL, with or without a
// fragment that is a JSON pointer.
func (c *Compiler) Compile(url string) (*Schema, error) {
	s, err := c.resolve(url)
	if err != nil {
		return nil, err
	}
	if err := checkLoops(s); err != nil {
		return nil, err
	}
	return s, nil
}

// resolve returns the schema at an absolute URL, loading and compiling
// its document if it is new.
func (c *Compiler) resolve(url string) (*Schema, error) {
	doc, frag, _ := strings.Cut(url, "#")
	if frag != "" && !strings.HasPrefix(frag, "/") {
		return nil, fmt.Errorf("%s: only JSON pointer fragments are supported", url)
	}
	if strings.Contains(frag, "%") {
		return nil, fmt.Errorf("%s: percent-encoded fragments are not supported", url)
	}
	r, err := c.resource(doc)
	if err != nil {
		return nil, err
	}
	s, ok := r.schemas[frag]
	if !ok {
		return nil, fmt.Errorf("%s: no schema there", url)
	}
	return s, nil
}

// resource loads and compiles the document at url, once.
func (c *Compiler) resource(url string) (*resource, error) {
	if r, ok := c.resources[url]; ok {
		return r, nil
	}
	data, err := c.load(url)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("schema %s: %w", url, err)
	}
	r := &resource{url: url, schemas: map[string]*Schema{}}
	// Registered before its refs are resolved, so that a document may
	// refer to itself or to one that refers back to it.
	c.resources[url] = r
	if _, err := c.compileSchema(r, "", doc); err != nil {
		delete(c.resources, url)
		return nil, err
	}
	for _, ptr := range sortedKeys(r.schemas) {
		s := r.schemas[ptr]
		if s.refText == "" {
			continue
		}
		target, err := c.resolve(resolveRef(url, s.refText))
		if err != nil {
			delete(c.resources, url)
			return nil, fmt.Errorf("schema %s: $ref: %w", s.loc, err)
		}
		s.ref, s.refText = target, ""
	}
	return r, nil
}

// resolveRef makes ref absolute against the URL of its document: a
// fragment, a file name in the same directory, or an absolute URL.
func resolveRef(base, ref string) string {
	switch {
	case strings.HasPrefix(ref, "#"):
		return base + ref
	case strings.Contains(ref, "://"):
		return ref
	}
	return base[:strings.LastIndexByte(base, '/')+1] + ref
}

// compileSchema compiles the schema v at pointer ptr of r's document.
func (c *Compiler) compileSchema(r *resource, ptr string, v any) (*Schema, error) {
	loc := r.url + "#" + ptr
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("schema %s: not an object (boolean schemas are not supported)", loc)
	}
	s := &Schema{loc: loc, minLength: -1, maxLength: -1, minItems: -1, maxItems: -1, minProperties: -1, maxProperties: -1}
	r.schemas[ptr] = s
	for _, kw := range sortedKeys(m) {
		compile, ok := compilers[kw]
		if !ok {
			return nil, fmt.Errorf("schema %s: keyword %q is not supported", loc, kw)
		}
		if err := compile(c, s, r, ptr, m[kw]); err != nil {
			if strings.HasPrefix(err.Error(), "schema ") {
				return nil, err
			}
			return nil, fmt.Errorf("schema %s: %s: %w", loc, kw, err)
		}
	}
	if s.then != nil && s.ifSchema == nil {
		return nil, fmt.Errorf("schema %s: then without if", loc)
	}
	return s, nil
}

func (c *Compiler) schemaMap(r *resource, ptr string, v any) (map[string]*Schema, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("not an object")
	}
	out := make(map[string]*Schema, len(m))
	for _, k := range sortedKeys(m) {
		s, err := c.compileSchema(r, ptr+"/"+escapePointer(k), m[k])
		if err != nil {
			return nil, err
		}
		out[k] = s
	}
	return out, nil
}

func (c *Compiler) schemaList(r *resource, ptr string, v any) ([]*Schema, error) {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return nil, fmt.Errorf("not a non-empty list of schemas")
	}
	out := make([]*Schema, len(list))
	for i, item := range list {
		s, err := c.compileSchema(r, ptr+"/"+strconv.Itoa(i), item)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// inPlace are the subschemas that apply to the same value as s: a loop
// among them would never end, whatever the document.
func (s *Schema) inPlace() []*Schema {
	out := append([]*Schema{}, s.anyOf...)
	out = append(out, s.oneOf...)
	for _, x := range []*Schema{s.ref, s.ifSchema, s.then} {
		if x != nil {
			out = append(out, x)
		}
	}
	return out
}

// children are the subschemas that apply to a value inside the one s
// checks.
func (s *Schema) children() []*Schema {
	out := append([]*Schema{}, s.prefixItems...)
	for _, p := range s.properties {
		out = append(out, p.schema)
	}
	for _, x := range []*Schema{s.items, s.propertyNames, s.additional} {
		if x != nil {
			out = append(out, x)
		}
	}
	return out
}

// checkLoops refuses a schema reachable from root that reaches itself
// through in-place subschemas only ({"$ref": "#"}): checking a value
// against it would not end. A loop through a child schema ends with the
// document's depth.
func checkLoops(root *Schema) error {
	const (
		unseen = iota
		active
		done
	)
	state := map[*Schema]int{}
	var inPlace func(s *Schema) error
	inPlace = func(s *Schema) error {
		switch state[s] {
		case active:
			return fmt.Errorf("schema %s: refers to itself without going into the value", s.loc)
		case done:
			return nil
		}
		state[s] = active
		for _, x := range s.inPlace() {
			if err := inPlace(x); err != nil {
				return err
			}
		}
		state[s] = done
		return nil
	}
	seen := map[*Schema]bool{}
	stack := []*Schema{root}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[s] {
			continue
		}
		seen[s] = true
		if err := inPlace(s); err != nil {
			return err
		}
		stack = append(append(stack, s.inPlace()...), s.children()...)
	}
	return nil
}

func stringList(list []any) ([]string, error) {
	out := make([]string, len(list))
	seen := map[string]bool{}
	for i, v := range list {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("not a list of strings")
		}
		if seen[s] {
			return nil, fmt.Errorf("%q is listed twice", s)
		}
		seen[s] = true
		out[i] = s
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func isTypeName(t string) bool {
	switch t {
	case "null", "boolean", "number", "integer", "string", "array", "object":
		return true
	}
	return false
}

func isPrimitive(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return false
	}
	return true
}

// escapePointer escapes one key for a JSON pointer (RFC 6901).
func escapePointer(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
