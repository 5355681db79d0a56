package validate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const acctURL = "https://127.0.0.1:14000/acme/acct/1"

func TestKeyAuthDigest(t *testing.T) {
	// base64url(SHA-256("tok.thumb")), computed independently.
	if got, want := KeyAuthDigest("tok.thumb"), "sYAwVrqDtVOuJZvAHurSAYPoEt5fFV_C4bdSOOW-o5Y"; got != want {
		t.Errorf("KeyAuthDigest = %q, want %q", got, want)
	}
}

func TestDNSAccountLabel(t *testing.T) {
	// The first is the example of draft-ietf-acme-dns-account-label
	// ("_ujmmovf2vn55tgye._acme-challenge.example.org").
	for url, want := range map[string]string{
		"https://example.com/acme/acct/ExampleAccount": "ujmmovf2vn55tgye",
		acctURL: "yig3uqnfz3vz5kxh",
	} {
		if got := DNSAccountLabel(url); got != want {
			t.Errorf("DNSAccountLabel(%q) = %q, want %q", url, got, want)
		}
	}
}

func TestDNS01(t *testing.T) {
	ka := keyAuth("tok")
	digest := KeyAuthDigest(ka)
	txt := func(name, val string) string { return fmt.Sprintf("%s TXT %q", name, val) }
	acctName := "_" + DNSAccountLabel(acctURL) + "._acme-challenge.svc.test."

	tests := []struct {
		name      string
		recursive bool
		typ       string
		records   []string
		servfail  string
		kind      Kind
		subs      []string
	}{
		{name: "ok/dns-01", recursive: true, typ: TypeDNS01, records: []string{
			txt("_acme-challenge.svc.test.", "stale-value"),
			txt("_acme-challenge.svc.test.", digest),
		}},
		{name: "ok/dns-01-cname", recursive: true, typ: TypeDNS01, records: []string{
			"_acme-challenge.svc.test. CNAME svc.acme-dns.test.",
			txt("svc.acme-dns.test.", digest),
		}},
		{name: "ok/dns-01-cname-chased", recursive: false, typ: TypeDNS01, records: []string{
			"_acme-challenge.svc.test. CNAME a.test.",
			"a.test. CNAME b.test.",
			txt("b.test.", digest),
		}},
		{name: "ok/dns-account-01", recursive: true, typ: TypeDNSAccount01, records: []string{
			txt("_acme-challenge.svc.test.", "dns-01 value is not looked at"),
			txt(acctName, digest),
		}},
		{name: "fail/dns-01-wrong", recursive: true, typ: TypeDNS01, records: []string{
			txt("_acme-challenge.svc.test.", "wrong-value"),
		}, kind: KindUnauthorized, subs: []string{"_acme-challenge.svc.test", `"wrong-value"`, digest}},
		{name: "fail/dns-01-empty", recursive: true, typ: TypeDNS01, records: []string{
			"_acme-challenge.svc.test. A 127.0.0.1",
		}, kind: KindUnauthorized, subs: []string{"no TXT record found at _acme-challenge.svc.test"}},
		{name: "fail/dns-01-nxdomain", recursive: true, typ: TypeDNS01,
			kind: KindDNS, subs: []string{"NXDOMAIN", "_acme-challenge.svc.test"}},
		{name: "fail/dns-01-servfail", recursive: true, typ: TypeDNS01, servfail: "_acme-challenge.svc.test",
			kind: KindDNS, subs: []string{"SERVFAIL", "_acme-challenge.svc.test"}},
		{name: "fail/dns-01-cname-loop", recursive: false, typ: TypeDNS01, records: []string{
			"_acme-challenge.svc.test. CNAME a.test.",
			"a.test. CNAME _acme-challenge.svc.test.",
		}, kind: KindDNS, subs: []string{"CNAME"}},
		{name: "fail/dns-account-01-only-dns-01-record", recursive: true, typ: TypeDNSAccount01, records: []string{
			txt("_acme-challenge.svc.test.", digest),
		}, kind: KindDNS, subs: []string{"NXDOMAIN", acctName[:len(acctName)-1]}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newTestDNS(t, tc.recursive, tc.records...)
			if tc.servfail != "" {
				srv.fail(tc.servfail, dns.RcodeServerFailure)
			}
			v := New(Config{Resolver: srv.Addr})
			err := v.Validate(context.Background(), Request{
				Type: tc.typ, IdentType: IdentDNS, Value: "svc.test",
				Token: "tok", KeyAuth: ka, AccountURL: acctURL,
			})
			if tc.kind == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			wantKind(t, err, tc.kind, tc.subs...)
		})
	}
}

// A resolver that never answers is a dns failure within the time limit.
func TestDNS01ResolverTimeout(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	v := New(Config{Resolver: pc.LocalAddr().String(), Timeout: 300 * time.Millisecond})
	start := time.Now()
	err = v.Validate(context.Background(), Request{Type: TypeDNS01, IdentType: IdentDNS, Value: "svc.test", Token: "tok", KeyAuth: keyAuth("tok")})
	wantKind(t, err, KindDNS, "timed out", "_acme-challenge.svc.test")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestValidateRejectsBadRequests(t *testing.T) {
	v := New(Config{})
	for _, r := range []Request{
		{Type: TypeDNS01, IdentType: IdentIP, Value: "127.0.0.1", KeyAuth: "x"},
		{Type: "http-02", IdentType: IdentDNS, Value: "svc.test"},
		{Type: TypeHTTP01, IdentType: IdentIP, Value: "not-an-ip"},
		{Type: TypeDNSAccount01, IdentType: IdentDNS, Value: "svc.test"},
	} {
		err := v.Validate(context.Background(), r)
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("Validate(%+v) = %v, want ErrUnsupported", r, err)
		}
	}
}
