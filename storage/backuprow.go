package storage

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// The row codec of backups: one row is a JSON array, one value per
// column, encoded by the column's kind (see backupfile.go). Rows are
// written and read with the small hand-written code below rather than
// encoding/json, which spent over 40% of a restore's CPU validating each
// line twice and boxing every value.

// appendValue appends v, as a driver returned it, in kind's encoding.
// The drivers differ (SQLite keeps booleans as integers and may hand back
// text as bytes), so each kind accepts the Go types that can carry it.
func appendValue(b []byte, kind string, v any) ([]byte, error) {
	if v == nil {
		return append(b, "null"...), nil
	}
	switch kind {
	case kindText:
		switch x := v.(type) {
		case string:
			return appendText(b, x), nil
		case []byte:
			return appendText(b, string(x)), nil
		case int64:
			return appendText(b, strconv.FormatInt(x, 10)), nil
		case time.Time:
			return appendText(b, x.UTC().Format(time.RFC3339Nano)), nil
		}
	case kindInt:
		switch x := v.(type) {
		case int64:
			return strconv.AppendInt(b, x, 10), nil
		case bool:
			return strconv.AppendInt(b, boolInt(x), 10), nil
		case float64:
			if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
				return strconv.AppendInt(b, int64(x), 10), nil
			}
		}
	case kindFloat:
		switch x := v.(type) {
		case float64:
			if !math.IsNaN(x) && !math.IsInf(x, 0) {
				return strconv.AppendFloat(b, x, 'g', -1, 64), nil
			}
		case int64:
			return strconv.AppendInt(b, x, 10), nil
		}
	case kindBool:
		switch x := v.(type) {
		case bool:
			return strconv.AppendBool(b, x), nil
		case int64:
			return strconv.AppendBool(b, x != 0), nil
		}
	case kindTime:
		switch x := v.(type) {
		case time.Time:
			return appendTime(b, x), nil
		case string:
			if t, ok := parseStoredTime(x); ok {
				return appendTime(b, t), nil
			}
		case []byte:
			if t, ok := parseStoredTime(string(x)); ok {
				return appendTime(b, t), nil
			}
		}
	case kindBytes:
		switch x := v.(type) {
		case []byte:
			return appendBase64(b, x), nil
		case string:
			return appendBase64(b, []byte(x)), nil
		}
	}
	return b, fmt.Errorf("cannot encode a %T value as %s", v, kind)
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

func appendBase64(b []byte, data []byte) []byte {
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, data)
	return append(b, '"')
}

// appendText appends s as a JSON string, or as {"base64":"..."} when s is
// not UTF-8: JSON strings cannot carry arbitrary bytes, and SQLite text
// can hold them.
func appendText(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		b = append(b, `{"base64":`...)
		return append(appendBase64(b, []byte(s)), '}')
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigit(c>>4), hexDigit(c&0xf))
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func hexDigit(c byte) byte { return "0123456789abcdef"[c] }

// storedTimeLayouts are the ways a SQLite column may spell a time when
// its driver did not parse it: certmint's own (_time_format=sqlite),
// RFC 3339, and Go's time.String from tools that wrote rows directly.
var storedTimeLayouts = []string{
	"2006-01-02 15:04:05.999999999-07:00",
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999 -0700 MST",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
}

func parseStoredTime(s string) (time.Time, bool) {
	for _, l := range storedTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// decodeRow parses a row line (with or without its newline) into Go
// values by column kind: string, int64, float64, bool, time.Time, []byte
// or nil. It accepts the JSON the writer produces and any other valid
// JSON spelling of the same values (whitespace, \u escapes), so a row
// edited by hand with care still reads.
func decodeRow(line []byte, cols []column) ([]any, error) {
	p := rowParser{b: line}
	p.space()
	if !p.eat('[') {
		return nil, errors.New("a row is not a JSON array")
	}
	out := make([]any, len(cols))
	for i, c := range cols {
		p.space()
		if i > 0 && !p.eat(',') {
			return nil, fmt.Errorf("%d values for %d columns", i, len(cols))
		}
		p.space()
		v, err := p.value(c.Kind)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", c.Name, err)
		}
		out[i] = v
	}
	p.space()
	if !p.eat(']') {
		return nil, fmt.Errorf("more values than the %d columns", len(cols))
	}
	p.space()
	if p.i != len(p.b) {
		return nil, errors.New("data after the row")
	}
	return out, nil
}

// rowParser reads JSON values of known kinds from b.
type rowParser struct {
	b []byte
	i int
}

func (p *rowParser) space() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

func (p *rowParser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *rowParser) word(w string) bool {
	if len(p.b)-p.i >= len(w) && string(p.b[p.i:p.i+len(w)]) == w {
		p.i += len(w)
		return true
	}
	return false
}

func (p *rowParser) value(kind string) (any, error) {
	if p.word("null") {
		return nil, nil
	}
	switch kind {
	case kindText:
		if p.eat('{') { // {"base64":"..."}: text that is not UTF-8
			p.space()
			if k, err := p.str(); err != nil || k != "base64" {
				return nil, errors.New(`expected {"base64":...}`)
			}
			p.space()
			if !p.eat(':') {
				return nil, errors.New(`expected {"base64":...}`)
			}
			p.space()
			b, err := p.base64()
			p.space()
			if err != nil || !p.eat('}') {
				return nil, errors.New(`expected {"base64":...}`)
			}
			return string(b), nil
		}
		return p.str()
	case kindInt:
		return strconv.ParseInt(p.number(), 10, 64)
	case kindFloat:
		return strconv.ParseFloat(p.number(), 64)
	case kindBool:
		switch {
		case p.word("true"):
			return true, nil
		case p.word("false"):
			return false, nil
		}
		return nil, errors.New("expected true or false")
	case kindTime:
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return time.Parse(time.RFC3339Nano, s)
	case kindBytes:
		return p.base64()
	}
	return nil, fmt.Errorf("unknown column kind %q", kind)
}

func (p *rowParser) number() string {
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		if (c < '0' || c > '9') && c != '-' && c != '+' && c != '.' && c != 'e' && c != 'E' {
			break
		}
		p.i++
	}
	return string(p.b[start:p.i])
}

func (p *rowParser) base64() ([]byte, error) {
	s, err := p.str()
	if err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(s)
}

// str reads a JSON string. Most need no unescaping and are one copy.
func (p *rowParser) str() (string, error) {
	if !p.eat('"') {
		return "", errors.New("expected a string")
	}
	start := p.i
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			s := string(p.b[start:p.i])
			p.i++
			return s, nil
		case c == '\\':
			return p.unescape(start)
		case c < 0x20:
			return "", errors.New("a control character in a string")
		}
		p.i++
	}
	return "", errors.New("an unterminated string")
}

// unescape finishes a string holding escapes, from its first byte at start.
func (p *rowParser) unescape(start int) (string, error) {
	out := append([]byte(nil), p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return string(out), nil
		case c < 0x20:
			return "", errors.New("a control character in a string")
		case c != '\\':
			out = append(out, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.b) {
			break
		}
		e := p.b[p.i+1]
		p.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", errors.New(`a bad \u escape`)
			}
			if utf16.IsSurrogate(r) {
				save := p.i
				if r2, ok := p.lowSurrogate(); ok {
					r = utf16.DecodeRune(r, r2)
				} else {
					p.i = save
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", fmt.Errorf("a bad escape \\%c", e)
		}
	}
	return "", errors.New("an unterminated string")
}

func (p *rowParser) hex4() (rune, bool) {
	if len(p.b)-p.i < 4 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(p.b[p.i:p.i+4]), 16, 16)
	if err != nil {
		return 0, false
	}
	p.i += 4
	return rune(v), true
}

func (p *rowParser) lowSurrogate() (rune, bool) {
	if !p.word(`\u`) {
		return 0, false
	}
	return p.hex4()
}
