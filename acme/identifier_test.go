package acme

import (
	"net/http"
	"strings"
	"testing"
)

// name253 is a host name of the greatest length DNS allows (RFC 1035
// §2.3.4, 255 octets on the wire).
var name253 = strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("a", 61)

// identifierForms are the DNS identifiers a trusted CA refuses (issue 26)
// and the forms that must keep working. Each refusal names a piece of
// the reason its detail must carry.
var identifierForms = []struct {
	name  string
	id    Identifier
	want  string // the normalized name; "" for a refusal
	why   string // a piece of the refusal's detail
	authz bool   // also tried through newAuthz (no wildcards there)
}{
	{name: "fail/invalid-a-label", id: Identifier{"dns", "xn--a.svc.test"}, why: "not a valid A-label", authz: true},
	{name: "fail/invalid-a-label-bad-punycode", id: Identifier{"dns", "xn--bcher-kva-.test"}, why: "a label starts or ends with a hyphen"},
	{name: "fail/a-label-of-disallowed-runes", id: Identifier{"dns", "xn--a-ecp.test"}, why: "not a valid A-label", authz: true},
	{name: "fail/a-label-of-ascii", id: Identifier{"dns", "xn--a-x.test"}, why: "not a valid A-label"},
	{name: "fail/reserved-hyphens", id: Identifier{"dns", "ab--cd.svc.test"}, why: "third and fourth positions", authz: true},
	{name: "fail/bidi-rule-across-labels", id: Identifier{"dns", "1abc.xn--4dbrk0ce.test"}, why: "RFC 5893 bidi rule"},
	{name: "fail/u-label", id: Identifier{"dns", "bücher.test"}, why: "send xn--bcher-kva.test", authz: true},
	{name: "fail/u-label-wildcard", id: Identifier{"dns", "*.bücher.test"}, why: "send *.xn--bcher-kva.test"},
	{name: "fail/u-label-upper-case-ascii", id: Identifier{"dns", "Bücher.TEST"}, why: "send xn--bcher-kva.test"},
	{name: "fail/invalid-u-label", id: Identifier{"dns", "a\u00a0b.test"}, why: "not a valid internationalized domain name", authz: true},
	{name: "fail/kelvin-sign", id: Identifier{"dns", "\u212aelvin.test"}, why: "not a valid internationalized domain name"},
	{name: "fail/numeric-last-label", id: Identifier{"dns", "0x7f.0.0.1"}, why: "last label is all digits", authz: true},
	{name: "fail/numeric-last-label-wildcard", id: Identifier{"dns", "*.svc.123"}, why: "last label is all digits"},
	{name: "fail/numeric-single-label", id: Identifier{"dns", "2130706433"}, why: "last label is all digits", authz: true},
	{name: "fail/label-over-63", id: Identifier{"dns", strings.Repeat("a", 64) + ".test"}, why: "longer than 63", authz: true},
	{name: "fail/name-over-253", id: Identifier{"dns", name253 + "a"}, why: "longer than 253", authz: true},
	{name: "fail/empty-label", id: Identifier{"dns", "a..svc.test"}, why: "empty label", authz: true},
	{name: "fail/empty-first-label", id: Identifier{"dns", ".svc.test"}, why: "empty label", authz: true},
	{name: "fail/empty", id: Identifier{"dns", ""}, why: "empty", authz: true},
	{name: "fail/ip-as-dns", id: Identifier{"dns", "127.0.0.1"}, why: "use an ip identifier", authz: true},

	{name: "ok/host", id: Identifier{"dns", "Svc.Internal.test"}, want: "svc.internal.test"},
	{name: "ok/wildcard", id: Identifier{"dns", "*.svc.test"}, want: "*.svc.test"},
	{name: "ok/localhost", id: Identifier{"dns", "localhost"}, want: "localhost"},
	{name: "ok/under-localhost", id: Identifier{"dns", "api.localhost"}, want: "api.localhost"},
	{name: "ok/a-label", id: Identifier{"dns", "xn--bcher-kva.example"}, want: "xn--bcher-kva.example"},
	{name: "ok/a-label-upper-case", id: Identifier{"dns", "XN--BCHER-KVA.example"}, want: "xn--bcher-kva.example"},
	{name: "ok/rtl-a-label", id: Identifier{"dns", "xn--4dbrk0ce.test"}, want: "xn--4dbrk0ce.test"},
	{name: "ok/wildcard-a-label", id: Identifier{"dns", "*.xn--mnchen-3ya.test"}, want: "*.xn--mnchen-3ya.test"},
	{name: "ok/digits-not-last", id: Identifier{"dns", "0x7f.0.0.1.svc.test"}, want: "0x7f.0.0.1.svc.test"},
	{name: "ok/hyphens-elsewhere", id: Identifier{"dns", "a--b.test"}, want: "a--b.test"},
	{name: "ok/name-of-253", id: Identifier{"dns", name253}, want: name253},
	{name: "ok/ipv4", id: Identifier{"ip", "127.0.0.1"}, want: "127.0.0.1"},
	{name: "ok/ipv6", id: Identifier{"ip", "::1"}, want: "::1"},
}

// TestIdentifierForms runs every form through checkIdentifiers, the check
// newOrder makes (with ParseIdentifier inside, which newAuthz calls).
func TestIdentifierForms(t *testing.T) {
	s := &Server{cfg: Config{MaxIdentifiers: 10}}
	for _, c := range identifierForms {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.checkIdentifiers([]Identifier{c.id})
			if c.want != "" {
				if err != nil {
					t.Fatalf("refused %+v: %v", c.id, err)
				}
				if got[0].name() != c.want || got[0].Type != c.id.Type {
					t.Fatalf("%+v normalized to %+v, want %s", c.id, got[0], c.want)
				}
				return
			}
			p, ok := err.(*Problem)
			if !ok {
				t.Fatalf("accepted %+v as %+v (err %v), want rejectedIdentifier", c.id, got, err)
			}
			if p.Type != ProblemNS+"rejectedIdentifier" || p.Status != http.StatusBadRequest {
				t.Fatalf("problem %s (%d), want rejectedIdentifier (400)", p.Type, p.Status)
			}
			if p.Identifier == nil || *p.Identifier != c.id {
				t.Fatalf("problem names %+v, want %+v", p.Identifier, c.id)
			}
			if !strings.Contains(p.Detail, c.why) {
				t.Fatalf("detail %q, want it to say %q", p.Detail, c.why)
			}
		})
	}
}

// TestIdentifierFormsTogether: an order with several refused names gets
// one rejectedIdentifier with a subproblem naming each (RFC 8555 §6.7.1),
// and the good names in it are not mentioned.
func TestIdentifierFormsTogether(t *testing.T) {
	s := &Server{cfg: Config{MaxIdentifiers: 100}}
	var ids, refused []Identifier
	accepted := map[string]bool{}
	for _, c := range identifierForms {
		switch {
		case c.want == "":
			refused = append(refused, c.id)
		case accepted[c.want]:
			continue // a duplicate is malformed (one name, one authorization)
		default:
			accepted[c.want] = true
		}
		ids = append(ids, c.id)
	}
	_, err := s.checkIdentifiers(ids)
	p, ok := err.(*Problem)
	if !ok || p.Type != ProblemNS+"rejectedIdentifier" {
		t.Fatalf("error %v, want rejectedIdentifier", err)
	}
	if len(p.Subproblems) != len(refused) {
		t.Fatalf("%d subproblems, want %d: %+v", len(p.Subproblems), len(refused), p.Subproblems)
	}
	for i, sp := range p.Subproblems {
		if sp.Type != ProblemNS+"rejectedIdentifier" || sp.Identifier == nil || *sp.Identifier != refused[i] {
			t.Errorf("subproblem %d %+v, want rejectedIdentifier for %+v", i, sp, refused[i])
		}
	}
}

// TestHandlerIdentifierForms sends the forms over ACME: refusals are
// rejectedIdentifier (400) with a fresh nonce, naming the identifier, and
// write no order and no authorization; the accepted forms are ordered.
// The forms marked authz are refused by newAuthz too, which shares the
// check.
func TestHandlerIdentifierForms(t *testing.T) {
	const preAuthzPath = "/acme/new-authz"
	var cases []hcase
	for _, f := range identifierForms {
		if f.want != "" {
			cases = append(cases, hcase{name: "order/" + f.name, status: http.StatusCreated,
				run: orderWith(map[string]any{"identifiers": []Identifier{f.id}}),
				check: func(t *testing.T, e *env, r *resp) {
					if got := decode[orderJSON](t, r).Identifiers; len(got) != 1 || got[0] != f.id {
						t.Errorf("order identifiers %+v, want %+v echoed as sent", got, f.id)
					}
				}})
			continue
		}
		cases = append(cases, hcase{name: "order/" + f.name, status: http.StatusBadRequest, problem: "rejectedIdentifier",
			run: orderWith(map[string]any{"identifiers": []Identifier{f.id}}), check: wantRefusedAlone(f.id)})
		if f.authz {
			cases = append(cases, hcase{name: "new-authz/" + f.name, status: http.StatusBadRequest, problem: "rejectedIdentifier",
				run: func(t *testing.T, e *env) *resp {
					return e.post(t, e.register(t), preAuthzPath, map[string]any{"identifier": f.id})
				},
				check: wantRefusedAlone(f.id)})
		}
	}
	cases = append(cases, hcase{name: "order/fail/several-refused", status: http.StatusBadRequest, problem: "rejectedIdentifier",
		run: orderWith(orderOf("ok.svc.test", "xn--a.svc.test", "0x7f.0.0.1", "*.svc.test")),
		check: func(t *testing.T, e *env, r *resp) {
			wantSubproblems("rejectedIdentifier", "xn--a.svc.test", "0x7f.0.0.1")(t, e, r)
			wantNothingWritten(t, e)
		}})
	runCases(t, cases)
}

// wantRefusedAlone checks a refusal of the single identifier id: the
// problem names it, and nothing was written.
func wantRefusedAlone(id Identifier) func(t *testing.T, e *env, r *resp) {
	return func(t *testing.T, e *env, r *resp) {
		t.Helper()
		if p := decode[Problem](t, r); p.Identifier == nil || *p.Identifier != id {
			t.Errorf("problem %s does not name %+v", r.body, id)
		}
		wantNothingWritten(t, e)
	}
}

// wantNothingWritten checks that no order and no authorization exist.
func wantNothingWritten(t *testing.T, e *env) {
	t.Helper()
	e.store.mu.Lock()
	defer e.store.mu.Unlock()
	if len(e.store.orders) != 0 || len(e.store.authzs) != 0 {
		t.Errorf("a refused request left %d orders, %d authorizations", len(e.store.orders), len(e.store.authzs))
	}
}
