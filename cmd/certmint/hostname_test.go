package main

import (
	"slices"
	"testing"
)

// TestHostnamesAddToDefaults: --hostname adds to localhost, 127.0.0.1 and
// the host name (given names first, since the first names the server in
// URLs); --hostname-only replaces them.
func TestHostnamesAddToDefaults(t *testing.T) {
	defaults := defaultHostnames()
	for name, tc := range map[string]struct {
		given []string
		only  bool
		want  []string // nil: a usage error
	}{
		"ok/none":         {nil, false, defaults},
		"ok/adds":         {[]string{"CA.test"}, false, append([]string{"ca.test"}, defaults...)},
		"ok/no-duplicate": {[]string{"127.0.0.1", "ca.test"}, false, append([]string{"127.0.0.1", "ca.test"}, slices.DeleteFunc(slices.Clone(defaults), func(s string) bool { return s == "127.0.0.1" })...)},
		"ok/only":         {[]string{"ca.test"}, true, []string{"ca.test"}},
		"fail/only-empty": {nil, true, nil},
	} {
		t.Run(name, func(t *testing.T) {
			o := serveOptions{Hostnames: tc.given, HostnameOnly: tc.only}
			err := o.resolveHostnames()
			if tc.want == nil {
				if _, ok := err.(*usageError); !ok {
					t.Fatalf("want a usage error, got %v", err)
				}
				return
			}
			if err != nil || !slices.Equal(o.Hostnames, tc.want) {
				t.Fatalf("got %v (%v), want %v", o.Hostnames, err, tc.want)
			}
		})
	}
}
