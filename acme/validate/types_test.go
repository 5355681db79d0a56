package validate

import (
	"slices"
	"testing"
)

func TestChallengeTypeTable(t *testing.T) {
	for _, tc := range []struct {
		name      string
		identType string
		wildcard  bool
		want      []string
	}{
		{"ok/dns-name", IdentDNS, false, []string{TypeHTTP01, TypeDNS01, TypeTLSALPN01, TypeDNSAccount01, TypeDNSPersist01}},
		{"ok/wildcard-dns-only", IdentDNS, true, []string{TypeDNS01, TypeDNSAccount01, TypeDNSPersist01}},
		{"ok/ip-no-dns", IdentIP, false, []string{TypeHTTP01, TypeTLSALPN01}},
		{"fail/unknown-ident", "email", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Offered(tc.identType, tc.wildcard)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Offered(%s, %v) = %v, want %v", tc.identType, tc.wildcard, got, tc.want)
			}
			for _, typ := range got {
				if !Allowed(typ, tc.identType, tc.wildcard) {
					t.Errorf("offered %s but Allowed says no", typ)
				}
			}
		})
	}
	if Allowed(TypeDNS01, IdentIP, false) {
		t.Error("dns-01 allowed for an IP identifier (RFC 8738 §7 forbids it)")
	}
	if Allowed("http-02", IdentDNS, false) {
		t.Error("an unknown challenge type is allowed")
	}
}
