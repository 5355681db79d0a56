package policy

import (
	"net/netip"
	"testing"
)

func TestRules(t *testing.T) {
	team, err := ParseEntries([]string{"*.payments.internal", "10.20.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	server := Rules{DenyDomains: []string{"corp.internal"}, DenyIPs: []netip.Prefix{netip.MustParsePrefix("10.99.0.0/16")}}
	cases := []struct {
		name  string
		rules Rules
		ident string
		ok    bool
	}{
		{"ok/under-wildcard-suffix", team, "api.payments.internal", true},
		{"ok/wildcard-itself", team, "*.payments.internal", true},
		{"fail/suffix-apex-not-under-wildcard", team, "payments.internal", false},
		{"fail/lookalike", team, "evilpayments.internal", false},
		{"fail/outside", team, "api.billing.internal", false},
		{"ok/ip-in-range", team, "10.20.3.4", true},
		{"fail/ip-outside", team, "10.21.0.1", false},
		{"ok/server-allows-by-default", server, "anything.test", true},
		{"fail/server-denied-apex", server, "corp.internal", false},
		{"fail/server-denied-sub", server, "a.b.corp.internal", false},
		{"fail/server-denied-ip", server, "10.99.1.1", false},
		{"ok/server-other-ip", server, "10.98.1.1", true},
		{"ok/empty", Rules{}, "x.test", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var why string
			if a, err := netip.ParseAddr(tc.ident); err == nil {
				why = tc.rules.CheckIP(a)
			} else {
				why = tc.rules.CheckDNS(tc.ident)
			}
			if (why == "") != tc.ok {
				t.Fatalf("%s: refused=%q, want ok=%v", tc.ident, why, tc.ok)
			}
		})
	}
}

func TestParseEntries(t *testing.T) {
	for _, bad := range []string{"*.", "a..b/", "payments..internal", ".x", "x.", "a b", "10.0.0.0/33"} {
		if _, err := ParseEntries([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	r, err := ParseEntries([]string{"Payments.Internal", "fd00::/8", "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.AllowDomains) != 1 || r.AllowDomains[0] != "payments.internal" || len(r.AllowIPs) != 2 {
		t.Fatalf("%+v", r)
	}
}
