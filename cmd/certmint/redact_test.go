package main

import "testing"

// TestRedactDSN: what the console's Settings page and error messages show
// of --db never holds the password, whatever form the URL takes.
func TestRedactDSN(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/var/lib/certmint/certmint.db", "/var/lib/certmint/certmint.db"},
		{"sqlite:/data/certmint.db", "sqlite:/data/certmint.db"},
		{"postgres://certmint:s3cret@db:5432/certmint", "postgres://certmint:xxxxx@db:5432/certmint"},
		{"postgres://certmint:s3cret@pg1:5432,pg2:5432/certmint?target_session_attrs=read-write",
			"postgres://certmint:xxxxx@pg1:5432,pg2:5432/certmint?target_session_attrs=read-write"},
		{"postgresql://certmint@pg1,pg2/certmint?password=s3cret", "postgresql://certmint@pg1,pg2/certmint?password=xxxxx"},
		{"host=db password=s3cret", "(unparsable DSN)"},
	} {
		if got := redactDSN(tc.in); got != tc.want {
			t.Errorf("redactDSN(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
