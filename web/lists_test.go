package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/certmint/certmint/acme"
)

// TestListsShowWhatMatters: invalid orders show their problem, the
// certificate list its total, the expiry timeline the longest lifetime,
// and a certificate without a subject no empty Subject row.
func TestListsShowWhatMatters(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c1 := seedCert(t, f.store, "one.test", time.Now().Add(80*24*time.Hour))
	seedCert(t, f.store, "two.test", time.Now().Add(10*24*time.Hour))

	// An order whose challenge failed.
	o := &acme.Order{AccountID: c1.AccountID, ID: acme.NewID(), Status: acme.StatusPending, Expires: time.Now().Add(time.Hour),
		Identifiers: []acme.Identifier{{Type: "dns", Value: "bad.test"}}, Names: []string{"bad.test"}}
	a := acme.Authorization{ID: acme.NewID(), AccountID: c1.AccountID, Type: "dns", Value: "bad.test", Status: acme.StatusPending,
		Expires: time.Now().Add(time.Hour), Challenges: []acme.Challenge{{ID: acme.NewID(), Type: "http-01", Token: acme.NewID(), Status: acme.StatusPending}}}
	o.AuthzIDs = []string{a.ID}
	must(t, f.store.CreateOrder(ctx, o, []acme.Authorization{a}))
	must(t, f.store.StartChallenge(ctx, a.Challenges[0].ID))
	must(t, f.store.CompleteChallenge(ctx, a.Challenges[0].ID,
		&acme.Problem{Type: acme.ProblemNS + "connection", Detail: "connection refused by 192.0.2.7:80"}, time.Now()))

	c := f.signedIn()
	if _, body := f.get(c, "/orders?status=invalid"); !strings.Contains(body, "connection refused by 192.0.2.7:80") {
		t.Errorf("invalid orders list lacks the problem:\n%s", body)
	}
	if _, body := f.get(c, "/certificates"); !strings.Contains(body, `id="cert-total" title="certificates matching this filter">2<`) {
		t.Errorf("certificates list lacks its total")
	}
	if _, body := f.get(c, "/certificates?q=one.test"); !strings.Contains(body, `id="cert-total" title="certificates matching this filter">1<`) {
		t.Errorf("filtered certificates list lacks its total")
	}
	f.srv.cfg.LongestValidity = 90 * 24 * time.Hour
	_, body := f.get(c, "/")
	if !strings.Contains(body, `id="expiry-span">next 91 days · 2 certificates`) {
		t.Errorf("expiry timeline does not span 90 days with both certificates:\n%s", between(body, "Expiry timeline", "</h2>"))
	}

	// A certificate from a CSR without a common name has no subject.
	nocn := seedCertCN(t, f.store, "nocn.test", "", time.Now().Add(time.Hour))
	if _, body = f.get(c, "/certificates/"+nocn.ID); strings.Contains(body, "<dt>Subject</dt>") {
		t.Error("a CN-less certificate shows an empty Subject row")
	}
	if _, body = f.get(c, "/certificates/"+c1.ID); !strings.Contains(body, `id="cert-subject">CN=one.test<`) {
		t.Error("a certificate with a subject shows no Subject row")
	}
	f.srv.cfg.NoLocalLogin = true
	anon := f.client()
	_, body = f.get(anon, "/login")
	if strings.Contains(body, `name="password"`) {
		t.Error("--local-login=false still shows the password form")
	}
	u, _ := url.Parse(f.ts.URL)
	tok := ""
	for _, ck := range anon.Jar.Cookies(u) {
		if ck.Name == loginCookie {
			tok = ck.Value
		}
	}
	resp, body := f.post(anon, "/login", url.Values{"username": {"admin"}, "password": {testPassword}, "csrf_token": {tok}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "turned off") {
		t.Errorf("password sign-in with --local-login=false: %d", resp.StatusCode)
	}
}
