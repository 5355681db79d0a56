package validate

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParsePersistRecord(t *testing.T) {
	until := time.Unix(1767225600, 0).UTC()
	tests := []struct {
		name, in string
		want     PersistRecord
		err      string
	}{
		{name: "ok/basic", in: "ca.example; accounturi=" + acctURL,
			want: PersistRecord{IssuerDomainName: "ca.example", AccountURI: acctURL}},
		{name: "ok/all-params-any-case", in: "CA.Example.\t;AccountURI=" + acctURL + " ; Policy=WILDCARD;persistUntil=1767225600;",
			want: PersistRecord{IssuerDomainName: "ca.example", AccountURI: acctURL, Wildcard: true, PersistUntil: &until}},
		{name: "ok/unknown-param-ignored", in: "ca.example; future-thing=1; accounturi=" + acctURL,
			want: PersistRecord{IssuerDomainName: "ca.example", AccountURI: acctURL}},
		{name: "ok/other-policy-is-absent", in: "ca.example; accounturi=" + acctURL + "; policy=subtree",
			want: PersistRecord{IssuerDomainName: "ca.example", AccountURI: acctURL}},
		{name: "fail/no-accounturi", in: "ca.example; policy=wildcard", err: "no accounturi"},
		{name: "fail/no-issuer", in: "; accounturi=" + acctURL, err: "issuer"},
		{name: "fail/duplicate", in: "ca.example; accounturi=a; accounturi=b", err: "duplicate"},
		{name: "fail/persistUntil", in: "ca.example; accounturi=a; persistUntil=soon", err: "base-10"},
		{name: "fail/no-equals", in: "ca.example; accounturi", err: "malformed"},
		{name: "fail/space-in-value", in: "ca.example; accounturi=a b", err: "malformed"},
		{name: "fail/empty-middle", in: "ca.example;; accounturi=a", err: "empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePersistRecord(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.IssuerDomainName != tc.want.IssuerDomainName || got.AccountURI != tc.want.AccountURI ||
				got.Wildcard != tc.want.Wildcard || (got.PersistUntil == nil) != (tc.want.PersistUntil == nil) ||
				(got.PersistUntil != nil && !got.PersistUntil.Equal(*tc.want.PersistUntil)) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	// What FormatPersistRecord writes parses back to the same thing.
	rec := FormatPersistRecord("ca.example", acctURL, true, &until)
	got, err := ParsePersistRecord(rec)
	if err != nil || !got.Wildcard || got.AccountURI != acctURL || !got.PersistUntil.Equal(until) {
		t.Fatalf("round trip of %q: %+v, %v", rec, got, err)
	}
}

func TestDNSPersist01(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	txt := func(name, val string) string { return fmt.Sprintf("%s TXT %q", name, val) }
	rec := func(extra string) string { return "ca.example; accounturi=" + acctURL + extra }
	const own = "_validation-persist.svc.test."
	tests := []struct {
		name     string
		value    string
		wildcard bool
		records  []string
		kind     Kind
		subs     []string
		matched  string
	}{
		{name: "ok/exact", value: "svc.test", records: []string{
			txt(own, "other-ca.example; accounturi="+acctURL),
			txt(own, "garbage ;;; record"),
			txt(own, rec("")),
		}, matched: rec("")},
		{name: "ok/persistUntil-ahead", value: "svc.test", records: []string{
			txt(own, rec(fmt.Sprintf("; persistUntil=%d", now.Add(time.Hour).Unix()))),
		}, matched: rec(fmt.Sprintf("; persistUntil=%d", now.Add(time.Hour).Unix()))},
		{name: "ok/wildcard", value: "svc.test", wildcard: true, records: []string{
			txt(own, rec("; policy=wildcard")),
		}, matched: rec("; policy=wildcard")},
		{name: "ok/subdomain-by-parent", value: "a.b.svc.test", records: []string{
			txt(own, rec("; policy=wildcard")),
		}, matched: rec("; policy=wildcard")},
		{name: "fail/other-account", value: "svc.test", records: []string{
			txt(own, "ca.example; accounturi=https://127.0.0.1:14000/acme/acct/2"),
		}, kind: KindUnauthorized, subs: []string{"another account"}},
		{name: "fail/other-issuer", value: "svc.test", records: []string{
			txt(own, "other-ca.example; accounturi="+acctURL),
		}, kind: KindUnauthorized, subs: []string{"names this CA", "ca.example"}},
		{name: "fail/expired", value: "svc.test", records: []string{
			txt(own, rec(fmt.Sprintf("; persistUntil=%d", now.Add(-time.Second).Unix()))),
		}, kind: KindUnauthorized, subs: []string{"persistUntil has passed"}},
		{name: "fail/wildcard-without-policy", value: "svc.test", wildcard: true, records: []string{
			txt(own, rec("")),
		}, kind: KindUnauthorized, subs: []string{"policy=wildcard"}},
		{name: "fail/subdomain-without-policy", value: "a.svc.test", records: []string{
			txt(own, rec("")),
		}, kind: KindUnauthorized, subs: []string{"_validation-persist.a.svc.test names this CA"}},
		{name: "fail/nothing", value: "svc.test", kind: KindUnauthorized, subs: []string{"_validation-persist.svc.test"}},
		{name: "fail/malformed", value: "svc.test", records: []string{
			txt(own, rec("; persistUntil=tomorrow")),
			txt(own, "!!!"),
		}, kind: KindMalformed, subs: []string{"base-10"}},
		{name: "fail/malformed-and-other-account", value: "svc.test", records: []string{
			txt(own, rec("; persistUntil=tomorrow")),
			txt(own, "ca.example; accounturi=https://127.0.0.1:14000/acme/acct/2"),
		}, kind: KindUnauthorized, subs: []string{"base-10", "another account"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newTestDNS(t, true, tc.records...)
			v := New(Config{Resolver: srv.Addr, Now: func() time.Time { return now }})
			r := Request{IdentType: IdentDNS, Value: tc.value, Wildcard: tc.wildcard, AccountURL: acctURL,
				IssuerDomainNames: []string{"ca.example", "ca2.example"}}
			m, err := v.ValidatePersist(context.Background(), r)
			if tc.kind != "" {
				wantKind(t, err, tc.kind, tc.subs...)
				r.Type = TypeDNSPersist01
				wantKind(t, v.Validate(context.Background(), r), tc.kind)
				return
			}
			if err != nil {
				t.Fatalf("ValidatePersist: %v", err)
			}
			if m.Record != tc.matched {
				t.Errorf("matched %q, want %q", m.Record, tc.matched)
			}
		})
	}
}

// A SERVFAIL is a dns problem, not a reason to look at the parent.
func TestDNSPersist01ServFail(t *testing.T) {
	srv := newTestDNS(t, true, `_validation-persist.test. TXT "ca.example; accounturi=`+acctURL+`; policy=wildcard"`)
	srv.fail("_validation-persist.svc.test", 2)
	v := New(Config{Resolver: srv.Addr})
	_, err := v.ValidatePersist(context.Background(), Request{IdentType: IdentDNS, Value: "svc.test",
		AccountURL: acctURL, IssuerDomainNames: []string{"ca.example"}})
	wantKind(t, err, KindDNS, "SERVFAIL")
}

// The test vectors of draft-ietf-acme-dns-persist-02 §10.2.
func TestHashedAccountURI(t *testing.T) {
	const prefix, thumb, acct = "https://ca.example/account-hash/", "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", "https://ca.example/acct/123"
	for domain, want := range map[string]string{
		"example.com": prefix + "sha-256/5SQm7n6tPh2-PlLbCKGnViTXX5z19SCN4cPGQHSk-kw",
		"*":           prefix + "sha-256/NpDnSwUthQK8zCgFdefYxAdAVPnygMLbs9US6oO-5ug",
	} {
		if got := HashedAccountURI(prefix, domain, thumb, acct); got != want {
			t.Errorf("HashedAccountURI(%q) = %q, want %q", domain, got, want)
		}
	}
}

// A draft -02 hashed accounturi is accepted for the record's own domain
// (the parent's, for a record found at a parent) or for "*", and only for
// the account's key.
func TestDNSPersist01Hashed(t *testing.T) {
	const prefix, thumb = "https://127.0.0.1:14000/acme/account-hash/", "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	txt := func(name, uri, extra string) string {
		return fmt.Sprintf("%s TXT %q", name, "ca.example; accounturi="+uri+extra)
	}
	tests := []struct {
		name, value, record string
		ok                  bool
	}{
		{"ok/domain", "svc.test", txt("_validation-persist.svc.test.", HashedAccountURI(prefix, "svc.test", thumb, acctURL), ""), true},
		{"ok/any-domain", "svc.test", txt("_validation-persist.svc.test.", HashedAccountURI(prefix, "*", thumb, acctURL), ""), true},
		{"ok/parent", "a.svc.test", txt("_validation-persist.svc.test.", HashedAccountURI(prefix, "svc.test", thumb, acctURL), "; policy=wildcard"), true},
		{"fail/other-domain", "svc.test", txt("_validation-persist.svc.test.", HashedAccountURI(prefix, "other.test", thumb, acctURL), ""), false},
		{"fail/other-key", "svc.test", txt("_validation-persist.svc.test.", HashedAccountURI(prefix, "svc.test", "x"+thumb[1:], acctURL), ""), false},
		{"fail/other-prefix", "svc.test", txt("_validation-persist.svc.test.", HashedAccountURI("https://elsewhere/", "svc.test", thumb, acctURL), ""), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := New(Config{Resolver: newTestDNS(t, true, tc.record).Addr})
			_, err := v.ValidatePersist(context.Background(), Request{IdentType: IdentDNS, Value: tc.value, AccountURL: acctURL,
				IssuerDomainNames: []string{"ca.example"}, AccountHashPrefix: prefix, KeyThumbprint: thumb})
			if tc.ok && err != nil {
				t.Fatalf("ValidatePersist: %v", err)
			}
			if !tc.ok {
				wantKind(t, err, KindUnauthorized, "another account")
			}
		})
	}
}
