package jsonschema

import (
	"fmt"
	"math/big"
	"strings"
)

// decimal is a JSON number exactly: digits × 10^exp, digits without
// leading or trailing zeros ("" for zero). Comparing two costs their
// length: a hostile 1e999999999 is not expanded (v5's big.Rat refused
// such exponents and then crashed on the nil it got).
type decimal struct {
	neg    bool
	digits string
	exp    big.Int
}

// parseDecimal reads a number in JSON's syntax.
func parseDecimal(s string) (*decimal, error) {
	bad := fmt.Errorf("%q is not a JSON number", s)
	d := &decimal{}
	rest := s
	if strings.HasPrefix(rest, "-") {
		d.neg, rest = true, rest[1:]
	}
	mant, expText := rest, ""
	if i := strings.IndexAny(rest, "eE"); i >= 0 {
		mant, expText = rest[:i], rest[i+1:]
	}
	whole, frac, hasFrac := strings.Cut(mant, ".")
	if !allDigits(whole) || hasFrac && !allDigits(frac) || len(whole) > 1 && whole[0] == '0' {
		return nil, bad
	}
	if expText != "" || strings.ContainsAny(rest, "eE") {
		t := strings.TrimPrefix(strings.TrimPrefix(expText, "+"), "-")
		if !allDigits(t) {
			return nil, bad
		}
		if _, ok := d.exp.SetString(expText, 10); !ok {
			return nil, bad
		}
	}
	digits := whole + frac
	d.exp.Sub(&d.exp, big.NewInt(int64(len(frac))))
	trimmed := strings.TrimRight(digits, "0")
	d.exp.Add(&d.exp, big.NewInt(int64(len(digits)-len(trimmed))))
	d.digits = strings.TrimLeft(trimmed, "0")
	if d.digits == "" {
		d.neg = false
		d.exp.SetInt64(0)
	}
	return d, nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isInt says whether d has no fractional part (1.0 and 1e2 are integers,
// as in JSON Schema and v5).
func (d *decimal) isInt() bool { return d.digits == "" || d.exp.Sign() >= 0 }

// cmp compares d and e: -1, 0 or +1.
func (d *decimal) cmp(e *decimal) int {
	switch {
	case d.sign() != e.sign():
		if d.sign() < e.sign() {
			return -1
		}
		return 1
	case d.digits == "":
		return 0
	}
	c := d.cmpAbs(e)
	if d.neg {
		return -c
	}
	return c
}

func (d *decimal) sign() int {
	switch {
	case d.digits == "":
		return 0
	case d.neg:
		return -1
	}
	return 1
}

// cmpAbs compares the magnitudes of two non-zero numbers: first where
// their point is (0.digits × 10^(len+exp)), then their digits.
func (d *decimal) cmpAbs(e *decimal) int {
	var pd, pe big.Int
	pd.Add(&d.exp, big.NewInt(int64(len(d.digits))))
	pe.Add(&e.exp, big.NewInt(int64(len(e.digits))))
	if c := pd.Cmp(&pe); c != 0 {
		return c
	}
	// Neither ends in a zero, so the longer of two that agree is larger.
	return strings.Compare(d.digits, e.digits)
}

// key is the same text for equal numbers (1, 1.0 and 10e-1).
func (d *decimal) key() string {
	sign := ""
	if d.neg {
		sign = "-"
	}
	return sign + d.digits + "e" + d.exp.String()
}
