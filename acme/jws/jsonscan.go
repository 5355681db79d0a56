package jws

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
)

// This file holds a minimal, allocation-free walker over JSON objects. It is
// used instead of encoding/json struct decoding for two reasons:
//   - encoding/json matches member names case-insensitively, but JOSE header
//     parameter names are case-sensitive (RFC 7515 §4): "Alg" is an unknown
//     parameter, not "alg";
//   - the JWS parse runs on every ACME request, and reflection-based decoding
//     allocates for every member.
// The walker trusts its input to be valid JSON: every caller runs json.Valid
// first, which does not allocate.

// objScanner iterates over the members of one JSON object.
type objScanner struct {
	data []byte
	pos  int
	done bool
}

// newObjScanner starts scanning data, which must be valid JSON. ok is false
// when the top-level value is not an object.
func newObjScanner(data []byte) (s objScanner, ok bool) {
	s.data = data
	s.pos = skipSpace(data, 0)
	if s.pos >= len(data) || data[s.pos] != '{' {
		return s, false
	}
	s.pos = skipSpace(data, s.pos+1)
	if s.pos < len(data) && data[s.pos] == '}' {
		s.done = true
	}
	return s, true
}

// next returns the next member: its name (still JSON-escaped, without the
// quotes) and the start and end offsets of its raw value in s.data. ok is
// false after the last member.
func (s *objScanner) next() (name []byte, vstart, vend int, ok bool) {
	if s.done {
		return nil, 0, 0, false
	}
	d := s.data
	// s.pos is at the opening quote of the member name.
	nend := skipString(d, s.pos)
	name = d[s.pos+1 : nend-1]
	p := skipSpace(d, nend)
	p = skipSpace(d, p+1) // past ':'
	vstart = p
	vend = skipValue(d, p)
	p = skipSpace(d, vend)
	if p >= len(d) || d[p] == '}' {
		s.done = true
	} else {
		s.pos = skipSpace(d, p+1) // past ','
	}
	return name, vstart, vend, true
}

func skipSpace(d []byte, p int) int {
	for p < len(d) {
		switch d[p] {
		case ' ', '\t', '\n', '\r':
			p++
		default:
			return p
		}
	}
	return p
}

// skipString returns the offset just past the string starting at d[p] == '"'.
func skipString(d []byte, p int) int {
	for p++; p < len(d); p++ {
		switch d[p] {
		case '\\':
			p++
		case '"':
			return p + 1
		}
	}
	return p
}

// skipValue returns the offset just past the value starting at d[p].
func skipValue(d []byte, p int) int {
	if p >= len(d) {
		return p
	}
	switch d[p] {
	case '"':
		return skipString(d, p)
	case '{', '[':
		depth := 0
		for p < len(d) {
			switch d[p] {
			case '"':
				p = skipString(d, p)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return p + 1
				}
			}
			p++
		}
		return p
	default: // number, true, false, null
		for p < len(d) {
			switch d[p] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return p
			}
			p++
		}
		return p
	}
}

// memberName returns the unescaped member name. Names without escapes (all
// real-world ones) are returned as is; escaped names take the slow path.
func memberName(raw []byte) []byte {
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw
	}
	var s string
	// raw sits between quotes in valid JSON, so this cannot fail.
	_ = json.Unmarshal(quoteRaw(raw), &s)
	return []byte(s)
}

// stringValue returns the contents of the JSON string value v (quotes
// included), unescaped. ok is false when v is not a string.
func stringValue(v []byte) (s []byte, escaped, ok bool) {
	if len(v) < 2 || v[0] != '"' {
		return nil, false, false
	}
	inner := v[1 : len(v)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner, false, true
	}
	var str string
	if err := json.Unmarshal(v, &str); err != nil {
		return nil, false, false
	}
	return []byte(str), true, true
}

func quoteRaw(raw []byte) []byte {
	q := make([]byte, 0, len(raw)+2)
	q = append(q, '"')
	q = append(q, raw...)
	return append(q, '"')
}

var b64 = base64.RawURLEncoding.Strict()

// validB64 reports whether s uses only the base64url alphabet without padding
// (RFC 7515 §2, RFC 4648 §5). The decoder alone is not enough: it skips CR
// and LF silently.
func validB64(s []byte) bool {
	for _, c := range s {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return len(s)%4 != 1
}

// decodeB64 decodes s into dst, which must have room for
// b64.DecodedLen(len(s)) bytes, and returns the decoded length.
func decodeB64(dst, s []byte) (int, bool) {
	if !validB64(s) {
		return 0, false
	}
	n, err := b64.Decode(dst, s)
	return n, err == nil
}
