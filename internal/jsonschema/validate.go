package jsonschema

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// An Error is one rule a value breaks: a leaf of the check, never a
// summary of others (a failed anyOf is the errors of its branches).
type Error struct {
	// Where is the JSON pointer (RFC 6901) of the value; for required,
	// additionalProperties and dependentRequired, of the object.
	Where string
	// Keyword is the keyword that failed: "type", "required", ...
	Keyword string
	// Key is, for required and dependentRequired, the missing key; for
	// additionalProperties (false), the key not allowed.
	Key string
	// Given is, for dependentRequired, the key whose presence needs Key.
	Given string
	// Format is, for format, its name, and Err why the value is not of it.
	Format string
	Err    error
	// Message says what is wrong in v5's words, without the value.
	Message string
}

func (e Error) Error() string { return e.Where + ": " + e.Message }

// Validate checks v, a value as encoding/json decodes it with UseNumber
// (map[string]any, []any, string, json.Number, bool, nil), and returns
// every rule it breaks, depth first, each keyword of a schema in v5's
// order. The work is bounded by the size of v times that of the schema
// (a value meets each subschema along each of the schema's paths to it).
func (s *Schema) Validate(v any) []Error {
	var c checker
	c.check(s, v)
	return c.errs
}

// checker walks a value; path holds the escaped keys and indexes that
// lead to the value being checked, joined only for an error.
type checker struct {
	path []string
	errs []Error
}

func (c *checker) where() string {
	if len(c.path) == 0 {
		return ""
	}
	return "/" + strings.Join(c.path, "/")
}

func (c *checker) fail(kw, format string, a ...any) {
	c.errs = append(c.errs, Error{Where: c.where(), Keyword: kw, Message: fmt.Sprintf(format, a...)})
}

// child checks v, the value at key seg inside the current one.
func (c *checker) child(s *Schema, seg string, v any) {
	c.path = append(c.path, seg)
	c.check(s, v)
	c.path = c.path[:len(c.path)-1]
}

// check checks v against s and says whether it passed.
func (c *checker) check(s *Schema, v any) bool {
	start := len(c.errs)
	vt := jsonType(v)
	if vt == "" {
		c.fail("type", "not a JSON value (Go type %T)", v)
		return false
	}
	if len(s.types) > 0 && !hasType(s.types, vt, v) {
		// As v5: a value of the wrong type is told nothing else.
		c.fail("type", "expected %s, but got %s", strings.Join(s.types, " or "), vt)
		return false
	}
	if s.hasConst && !equal(v, s.constant) {
		c.fail("const", "%s", s.constMsg)
	}
	if s.enum != nil && !inEnum(s.enum, v) {
		c.fail("enum", "%s", s.enumMsg)
	}
	if str, ok := v.(string); ok && s.formatCheck != nil {
		if err := s.formatCheck(str); err != nil {
			c.errs = append(c.errs, Error{Where: c.where(), Keyword: "format", Format: s.format, Err: err,
				Message: fmt.Sprintf("not of the format %s", quote(s.format))})
		}
	}
	switch v := v.(type) {
	case map[string]any:
		c.object(s, v)
	case []any:
		c.array(s, v)
	case string:
		c.string(s, v)
	case json.Number:
		c.number(s, v)
	}
	if s.ref != nil {
		c.check(s.ref, v)
	}
	if len(s.anyOf) > 0 {
		before := len(c.errs)
		for _, x := range s.anyOf {
			if c.check(x, v) {
				c.errs = c.errs[:before]
				break
			}
		}
	}
	if len(s.oneOf) > 0 {
		// The errors of the branches that failed, if none passed; one error,
		// if two passed; none, if one did.
		before, matched, twice := len(c.errs), -1, false
		for i, x := range s.oneOf {
			if !c.check(x, v) {
				continue
			}
			if matched >= 0 {
				c.errs, twice = c.errs[:before], true
				c.fail("oneOf", "valid against schemas at indexes %d and %d", matched, i)
				break
			}
			matched = i
		}
		if matched >= 0 && !twice {
			c.errs = c.errs[:before]
		}
	}
	if s.ifSchema != nil {
		before := len(c.errs)
		ok := c.check(s.ifSchema, v)
		c.errs = c.errs[:before]
		if ok && s.then != nil {
			c.check(s.then, v)
		}
	}
	return len(c.errs) == start
}

func (c *checker) object(s *Schema, v map[string]any) {
	if s.minProperties >= 0 && len(v) < s.minProperties {
		c.fail("minProperties", "minimum %d properties allowed, but found %d properties", s.minProperties, len(v))
	}
	if s.maxProperties >= 0 && len(v) > s.maxProperties {
		c.fail("maxProperties", "maximum %d properties allowed, but found %d properties", s.maxProperties, len(v))
	}
	for _, k := range s.required {
		if _, ok := v[k]; !ok {
			c.errs = append(c.errs, Error{Where: c.where(), Keyword: "required", Key: k,
				Message: "missing properties: " + quote(k)})
		}
	}
	for _, p := range s.properties {
		if pv, ok := v[p.name]; ok {
			c.child(p.schema, escapePointer(p.name), pv)
		}
	}
	// The document's keys in order, so that errors come out the same way
	// each time (a map's order is random).
	var keys []string
	if s.propertyNames != nil || s.noAdditional || s.additional != nil {
		keys = sortedKeys(v)
	}
	if s.propertyNames != nil {
		for _, k := range keys {
			c.child(s.propertyNames, escapePointer(k), k)
		}
	}
	if s.noAdditional || s.additional != nil {
		for _, k := range keys {
			if s.hasProperty(k) {
				continue
			}
			if s.noAdditional {
				c.errs = append(c.errs, Error{Where: c.where(), Keyword: "additionalProperties", Key: k,
					Message: "additionalProperties " + quote(k) + " not allowed"})
			} else {
				c.child(s.additional, escapePointer(k), v[k])
			}
		}
	}
	for _, d := range s.dependentRequired {
		if _, ok := v[d.given]; !ok {
			continue
		}
		for _, k := range d.required {
			if _, ok := v[k]; !ok {
				c.errs = append(c.errs, Error{Where: c.where(), Keyword: "dependentRequired", Key: k, Given: d.given,
					Message: fmt.Sprintf("property %s is required, if %s property exists", quote(k), quote(d.given))})
			}
		}
	}
}

func (s *Schema) hasProperty(k string) bool {
	i := sort.Search(len(s.properties), func(i int) bool { return s.properties[i].name >= k })
	return i < len(s.properties) && s.properties[i].name == k
}

func (c *checker) array(s *Schema, v []any) {
	if s.minItems >= 0 && len(v) < s.minItems {
		c.fail("minItems", "minimum %d items required, but found %d items", s.minItems, len(v))
	}
	if s.maxItems >= 0 && len(v) > s.maxItems {
		c.fail("maxItems", "maximum %d items required, but found %d items", s.maxItems, len(v))
	}
	if s.uniqueItems {
		// By a key per item, not pairwise: a hostile list of thousands of
		// items costs its size, not its square. The pair told is v5's: the
		// first item equal to an earlier one, and the first of those.
		first := make(map[string]int, len(v))
		for i, item := range v {
			k := canonical(item)
			if j, ok := first[k]; ok {
				c.fail("uniqueItems", "items at index %d and %d are equal", j, i)
				break
			}
			first[k] = i
		}
	}
	for i, item := range v {
		switch {
		case i < len(s.prefixItems):
			c.child(s.prefixItems[i], strconv.Itoa(i), item)
		case s.items != nil:
			c.child(s.items, strconv.Itoa(i), item)
		}
	}
}

func (c *checker) string(s *Schema, v string) {
	if s.minLength >= 0 || s.maxLength >= 0 {
		// In code points, as the specification says.
		n := utf8.RuneCountInString(v)
		if s.minLength >= 0 && n < s.minLength {
			c.fail("minLength", "length must be >= %d, but got %d", s.minLength, n)
		}
		if s.maxLength >= 0 && n > s.maxLength {
			c.fail("maxLength", "length must be <= %d, but got %d", s.maxLength, n)
		}
	}
	if s.pattern != nil && !s.pattern.MatchString(v) {
		c.fail("pattern", "does not match pattern %s", quote(s.pattern.String()))
	}
}

func (c *checker) number(s *Schema, v json.Number) {
	if s.minimum == nil && s.maximum == nil {
		return
	}
	d, err := parseDecimal(string(v))
	if err != nil {
		c.fail("type", "not a JSON number")
		return
	}
	if s.minimum != nil && d.cmp(s.minimum) < 0 {
		c.fail("minimum", "must be >= %s but found %s", s.minimumText, v)
	}
	if s.maximum != nil && d.cmp(s.maximum) > 0 {
		c.fail("maximum", "must be <= %s but found %s", s.maximumText, v)
	}
}

// jsonType is the JSON type of v, "" if v is not a JSON value.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return ""
}

// hasType says whether v, of JSON type vt, is one of types; an integer is
// a number with no fractional part (1.0 is one).
func hasType(types []string, vt string, v any) bool {
	for _, t := range types {
		if t == vt {
			return true
		}
		if t == "integer" && vt == "number" {
			if d, err := parseDecimal(string(v.(json.Number))); err == nil && d.isInt() {
				return true
			}
		}
	}
	return false
}

func inEnum(enum []any, v any) bool {
	for _, e := range enum {
		if equal(v, e) {
			return true
		}
	}
	return false
}

// equal is JSON equality: numbers by value, objects regardless of order.
func equal(a, b any) bool {
	if jsonType(a) != jsonType(b) {
		return false
	}
	switch a := a.(type) {
	case string, bool, nil:
		return a == b
	}
	return canonical(a) == canonical(b)
}

// canonical is the same text for equal JSON values: each value tagged
// with its type, strings and keys quoted, numbers by value, keys sorted.
func canonical(v any) string {
	var b strings.Builder
	writeCanonical(&b, v)
	return b.String()
}

func writeCanonical(b *strings.Builder, v any) {
	switch v := v.(type) {
	case nil:
		b.WriteString("n")
	case bool:
		if v {
			b.WriteString("t")
		} else {
			b.WriteString("f")
		}
	case json.Number:
		b.WriteString("#")
		if d, err := parseDecimal(string(v)); err == nil {
			b.WriteString(d.key())
		} else {
			b.WriteString(strconv.Quote(string(v)))
		}
	case string:
		b.WriteString(strconv.Quote(v))
	case []any:
		b.WriteString("[")
		for _, item := range v {
			writeCanonical(b, item)
			b.WriteString(",")
		}
		b.WriteString("]")
	case map[string]any:
		b.WriteString("{")
		for _, k := range sortedKeys(v) {
			b.WriteString(strconv.Quote(k))
			b.WriteString(":")
			writeCanonical(b, v[k])
			b.WriteString(",")
		}
		b.WriteString("}")
	default:
		fmt.Fprintf(b, "?%T", v)
	}
}

// quote single-quotes s as v5 does in its messages.
func quote(s string) string {
	q := strconv.Quote(s)
	q = strings.ReplaceAll(q, `\"`, `"`)
	q = strings.ReplaceAll(q, `'`, `\'`)
	return "'" + q[1:len(q)-1] + "'"
}
