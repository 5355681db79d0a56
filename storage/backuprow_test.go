package storage

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"
)

var codecCols = []column{{"t", kindText}, {"i", kindInt}, {"f", kindFloat}, {"b", kindBool}, {"ts", kindTime}, {"raw", kindBytes}}

// encodeRow is what the backup writer puts on a line for vals.
func encodeRow(t testing.TB, cols []column, vals []any) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := newBackupWriter(&buf)
	w.cols, w.table = cols, "t"
	if err := w.row(vals); err != nil {
		t.Fatal(err)
	}
	return w.buf
}

// TestRowCodec: every kind survives the writer and the reader, including
// text that JSON cannot carry as a string, and each line is valid JSON
// (an operator's jq must read it).
func TestRowCodec(t *testing.T) {
	at := time.Date(2031, 3, 14, 15, 9, 26, 535897932, time.FixedZone("X", 3600))
	cases := map[string]struct{ in, want []any }{
		"plain":     {[]any{"abc", int64(42), 1.5, true, at, []byte{0, 1, 0xff}}, []any{"abc", int64(42), 1.5, true, at.UTC(), []byte{0, 1, 0xff}}},
		"nulls":     {[]any{nil, nil, nil, nil, nil, nil}, []any{nil, nil, nil, nil, nil, nil}},
		"escapes":   {[]any{"q\"b\\n\n\r\t\x01\x1fé€😀", int64(-9223372036854775808), -0.25, false, at, []byte{}}, []any{"q\"b\\n\n\r\t\x01\x1fé€😀", int64(-9223372036854775808), -0.25, false, at.UTC(), []byte{}}},
		"not-utf8":  {[]any{"a\xffb\xfe", int64(0), 0.0, false, at, []byte("x")}, []any{"a\xffb\xfe", int64(0), 0.0, false, at.UTC(), []byte("x")}},
		"as-sqlite": {[]any{[]byte("text as bytes"), true, int64(3), int64(1), "2031-03-14 14:09:26.535897+00:00", "bytes as text"}, []any{"text as bytes", int64(1), 3.0, true, time.Date(2031, 3, 14, 14, 9, 26, 535897000, time.UTC), []byte("bytes as text")}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			line := encodeRow(t, codecCols, c.in)
			if !json.Valid(line) {
				t.Fatalf("not valid JSON: %s", line)
			}
			got, err := decodeRow(line, codecCols)
			if err != nil {
				t.Fatalf("decode %s: %v", line, err)
			}
			for i := range got {
				if tm, ok := got[i].(time.Time); ok {
					if !tm.Equal(c.want[i].(time.Time)) {
						t.Errorf("column %d: %v, want %v", i, tm, c.want[i])
					}
					continue
				}
				if !reflect.DeepEqual(got[i], c.want[i]) {
					t.Errorf("column %d: %#v, want %#v (line %s)", i, got[i], c.want[i], line)
				}
			}
		})
	}
}

// TestRowDecodeOtherSpellings: JSON written by another tool (spaces,
// \u escapes, a surrogate pair) reads the same; broken rows are errors.
func TestRowDecodeOtherSpellings(t *testing.T) {
	cols := []column{{"t", kindText}, {"i", kindInt}}
	got, err := decodeRow([]byte(` [ "\u00e9\ud83d\ude00\/" , 7 ] `+"\n"), cols)
	if err != nil || got[0] != "é😀/" || got[1] != int64(7) {
		t.Fatalf("got %#v, %v", got, err)
	}
	for _, bad := range []string{`["a"]`, `["a",1,2]`, `["a",1`, `["a,1]`, `["a",x]`, `{"a":1}`, `["a",1]x`, `["\q",1]`, "[\"a\x01\",1]"} {
		if _, err := decodeRow([]byte(bad), cols); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}

// TestRowEncodeRefuses: values a column cannot carry fail the backup
// rather than going in wrong.
func TestRowEncodeRefuses(t *testing.T) {
	for _, c := range []struct {
		kind string
		v    any
	}{{kindFloat, math.NaN()}, {kindInt, 1.5}, {kindTime, "yesterday"}, {kindBool, "yes"}} {
		if _, err := appendValue(nil, c.kind, c.v); err == nil {
			t.Errorf("%s accepted %#v", c.kind, c.v)
		}
	}
}

// FuzzRowCodec: any text and bytes survive a round trip.
func FuzzRowCodec(f *testing.F) {
	f.Add("plain", []byte{1, 2}, int64(5))
	f.Add("\"\\\x00\xff\u2028", []byte{}, int64(-1))
	cols := []column{{"t", kindText}, {"b", kindBytes}, {"i", kindInt}}
	f.Fuzz(func(t *testing.T, s string, b []byte, i int64) {
		line := encodeRow(t, cols, []any{s, b, i})
		if !json.Valid(line) {
			t.Fatalf("not valid JSON: %q", line)
		}
		got, err := decodeRow(line, cols)
		if err != nil {
			t.Fatal(err)
		}
		if got[0] != s || !bytes.Equal(got[1].([]byte), b) || got[2] != i {
			t.Fatalf("round trip of %q %x %d gave %#v", s, b, i, got)
		}
	})
}
