package web

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/internal/audit"
	"github.com/certmint/certmint/storage"
)

func TestMain(m *testing.M) {
	bcryptCost = bcrypt.MinCost // the cost is not what these tests check
	code := m.Run()
	if testCA != nil {
		// sharedCA's directory: DIR/ca.
		_ = os.RemoveAll(filepath.Dir(caDir))
	}
	if benchDir != "" {
		_ = os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// Every page and action without a session goes to the sign-in page.
func TestRedirectsWithoutSession(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	for _, p := range []string{"/", "/accounts", "/accounts/x", "/orders", "/orders/x", "/certificates",
		"/certificates/x", "/certificates/x/pem", "/certificates/x/revoke", "/audit", "/settings", "/root.pem",
		"/debug/pprof/", "/debug/pprof/heap", "/nope"} {
		resp, _ := f.get(c, p)
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
			t.Errorf("GET %s: %d Location %q, want 303 to /login", p, resp.StatusCode, loc)
		}
	}
	for _, p := range []string{"/logout", "/certificates/x/revoke", "/accounts/x/deactivate"} {
		resp, _ := f.post(c, p, url.Values{"csrf_token": {"x"}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
			t.Errorf("POST %s: %d Location %q, want 303 to /login", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	resp, _ := f.get(c, "/certificates?q=x")
	if got := resp.Header.Get("Location"); got != "/login?next=%2Fcertificates%3Fq%3Dx" {
		t.Errorf("next= not kept: %q", got)
	}
}

func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t)
	resp, body := f.get(f.client(), "/login")
	want := map[string]string{
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
		"Cache-Control":          "no-store",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, part := range []string{"default-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, part) {
			t.Errorf("CSP %q lacks %q", csp, part)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(body, "<script>") || strings.Contains(body, " style=") {
		t.Errorf("inline script or style allowed or used")
	}
	if !strings.HasPrefix(resp.Header.Get("Strict-Transport-Security"), "max-age=") {
		t.Errorf("no HSTS")
	}
	// Assets are fingerprinted and cached for long.
	css, err := f.srv.assets.path("app.css")
	must(t, err)
	if !strings.Contains(body, css) || !strings.Contains(css, "app.") || len(css) <= len("/static/app.css") {
		t.Fatalf("page does not link the fingerprinted stylesheet %s", css)
	}
	aresp, _ := f.get(f.client(), css)
	if aresp.StatusCode != 200 || !strings.Contains(aresp.Header.Get("Cache-Control"), "immutable") ||
		!strings.HasPrefix(aresp.Header.Get("Content-Type"), "text/css") {
		t.Errorf("asset: %d %q %q", aresp.StatusCode, aresp.Header.Get("Cache-Control"), aresp.Header.Get("Content-Type"))
	}
	if r, _ := f.get(f.client(), "/static/app.css"); r.StatusCode != 404 {
		t.Errorf("unfingerprinted asset name served: %d", r.StatusCode)
	}
}

func TestLoginLogout(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	resp, body := f.tryLogin(c, "admin", "wrong password")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong user name or password") {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	_, body = f.get(c, "/login?next=/settings")
	resp, _ = f.post(c, "/login", url.Values{"username": {"admin"}, "password": {testPassword},
		"csrf_token": {csrfOf(t, body)}, "next": {"/settings"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/settings" {
		t.Fatalf("sign-in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var sc *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie {
			sc = ck
		}
	}
	if sc == nil || !sc.Secure || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie %+v, want Secure, HttpOnly, SameSite=Strict", sc)
	}
	// The database holds only the token's hash.
	if _, err := f.store.GetSession(context.Background(), sc.Value, time.Now()); err == nil {
		t.Fatal("session found by the raw token: it is stored unhashed")
	}
	if _, err := f.store.GetSession(context.Background(), hashToken(sc.Value), time.Now()); err != nil {
		t.Fatalf("session not found by hash: %v", err)
	}
	resp, body = f.get(c, "/")
	if resp.StatusCode != 200 || !strings.Contains(body, "No certificates yet — point certbot at") {
		t.Fatalf("dashboard: %d", resp.StatusCode)
	}
	resp, _ = f.post(c, "/logout", url.Values{"csrf_token": {csrfOf(t, body)}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp, _ = f.get(c, "/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("dashboard after logout: %d, want redirect", resp.StatusCode)
	}
	if got, want := auditActions(t, f.store), "admin:login.failed admin:login admin:logout"; got != want {
		t.Fatalf("audit = %q, want %q", got, want)
	}
	// Open redirects are refused.
	for next, want := range map[string]string{"//evil.test/": "/", "https://evil.test": "/", "/\\evil": "/", "/orders?x=1": "/orders?x=1"} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
}

func TestCSRF(t *testing.T) {
	f := newFixture(t)
	cert := seedCert(t, f.store, "csrf.example.test", time.Now().Add(60*24*time.Hour))
	// The sign-in form needs its token too.
	c := f.client()
	f.get(c, "/login")
	resp, body := f.post(c, "/login", url.Values{"username": {"admin"}, "password": {testPassword}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "CSRF") {
		t.Fatalf("sign-in without token: %d", resp.StatusCode)
	}
	c = f.signedIn()
	for name, form := range map[string]url.Values{
		"missing": {"reason": {"1"}},
		"wrong":   {"reason": {"1"}, "csrf_token": {"forged"}},
	} {
		resp, body := f.post(c, "/certificates/"+cert.ID+"/revoke", form)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "security token (CSRF) is missing or out of date") {
			t.Errorf("%s token: %d", name, resp.StatusCode)
		}
	}
	got, _ := f.store.GetCertificate(context.Background(), cert.ID)
	if got.Revoked {
		t.Fatal("certificate revoked by a forged form")
	}
	// The session's own token works.
	_, page := f.get(c, "/certificates/"+cert.ID+"/revoke")
	resp, _ = f.post(c, "/certificates/"+cert.ID+"/revoke", url.Values{"reason": {"1"}, "csrf_token": {csrfOf(t, page)}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke with token: %d", resp.StatusCode)
	}
}

func TestLockout(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	for i := 1; i <= 5; i++ {
		resp, _ := f.tryLogin(c, "admin", "guess-"+string(rune('0'+i)))
		want := http.StatusUnauthorized
		if i == 5 {
			want = http.StatusTooManyRequests
		}
		if resp.StatusCode != want {
			t.Fatalf("failure %d: %d, want %d", i, resp.StatusCode, want)
		}
	}
	wantSleeps := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second}
	if len(f.sleeps) != 5 || f.sleeps[0] != wantSleeps[0] || f.sleeps[4] != wantSleeps[4] {
		t.Fatalf("delays %v, want %v", f.sleeps, wantSleeps)
	}
	// Locked: even the right password is refused, without a check.
	resp, body := f.tryLogin(c, "admin", testPassword)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "locked") {
		t.Fatalf("6th attempt with the right password: %d", resp.StatusCode)
	}
	// Another user name is not locked; unknown names are throttled alike.
	resp, _ = f.tryLogin(c, "nobody", "x")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unknown user: %d", resp.StatusCode)
	}
	// After the lock time the user can sign in again.
	f.srv.now = func() time.Time { return time.Now().Add(lockFor + time.Minute) }
	if resp, body = f.tryLogin(c, "admin", testPassword); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after the lock: %d\n%s", resp.StatusCode, body)
	}
}

func TestRevokeAndPages(t *testing.T) {
	f := newFixture(t)
	cert := seedCert(t, f.store, "web.example.test", time.Now().Add(5*24*time.Hour))
	seedCert(t, f.store, "other.example.test", time.Now().Add(60*24*time.Hour))
	c := f.signedIn()
	for path, want := range map[string]string{
		"/":                                      `id="count-valid">2<`,
		"/certificates?q=web.example":            "web.example.test",
		"/certificates?state=expiring&within=7d": "web.example.test",
		"/certificates/" + cert.ID:               "ECDSA P-256",
		"/accounts":                              "ops@example.test",
		"/accounts/" + cert.AccountID:            "web.example.test",
		"/orders?status=valid":                   "web.example.test",
		"/orders/" + cert.OrderID:                "http-01",
		"/settings":                              "xxxxx",
		"/audit?q=login":                         "admin",
		"/debug/pprof/":                          "goroutine",
	} {
		resp, body := f.get(c, path)
		if resp.StatusCode != 200 || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, want 200 with %q", path, resp.StatusCode, want)
		}
	}
	if _, body := f.get(c, "/certificates?q=nothing-like-this"); !strings.Contains(body, "No certificates match") {
		t.Errorf("no empty state for a search without results")
	}
	resp, body := f.get(c, "/certificates/"+cert.ID+"/pem")
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "-----BEGIN CERTIFICATE-----") {
		t.Errorf("PEM download: %d", resp.StatusCode)
	}
	_, page := f.get(c, "/certificates/"+cert.ID+"/revoke")
	resp, _ = f.post(c, "/certificates/"+cert.ID+"/revoke", url.Values{"reason": {"4"}, "csrf_token": {csrfOf(t, page)}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	got, _ := f.store.GetCertificate(context.Background(), cert.ID)
	if !got.Revoked || got.RevocationReason != 4 || f.revoked != 1 {
		t.Fatalf("after revoke: revoked=%v reason=%d OnRevoke calls=%d", got.Revoked, got.RevocationReason, f.revoked)
	}
	// The store's conditional write refuses a second revocation (ACME
	// answers alreadyRevoked from the same error).
	resp, _ = f.post(c, "/certificates/"+cert.ID+"/revoke", url.Values{"reason": {"1"}, "csrf_token": {csrfOf(t, page)}})
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("second revoke: %d, want 409", resp.StatusCode)
	}
	if _, body = f.get(c, "/certificates/"+cert.ID); !strings.Contains(body, "superseded") {
		t.Errorf("detail page does not show the reason")
	}
	_, page = f.get(c, "/accounts/"+cert.AccountID+"/deactivate")
	resp, _ = f.post(c, "/accounts/"+cert.AccountID+"/deactivate", url.Values{"csrf_token": {csrfOf(t, page)}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("deactivate: %d", resp.StatusCode)
	}
	if a, _ := f.store.GetAccount(context.Background(), cert.AccountID); a.Status != acme.StatusDeactivated {
		t.Fatalf("account %s", a.Status)
	}
	if got := auditActions(t, f.store); !strings.HasSuffix(got, "admin:certificate.revoke admin:account.deactivate") {
		t.Fatalf("audit = %q", got)
	}
	// The console's revocation is audited as ACME's is (revocation.Revoker):
	// one entry, with the certificate as target and the reason by name.
	evs, err := f.store.ListAuditEvents(context.Background(), audit.CertRevoke, storage.Page{})
	must(t, err)
	want := "serial " + cert.Serial + " (" + strings.Join(cert.Names, ",") + "), reason superseded, via the console"
	if len(evs) != 1 || evs[0].Target != audit.Certificate(cert.ID) || evs[0].Detail != want {
		t.Fatalf("revocation audit = %+v, want one entry for %s with detail %q", evs, audit.Certificate(cert.ID), want)
	}
}

func TestRelTime(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		12 * 24 * time.Hour: "in 12 days", -3 * time.Hour: "3 hours ago", 30 * time.Second: "just now",
		time.Hour: "in 1 hour", 400 * 24 * time.Hour: "in 13 months", -3 * 365 * 24 * time.Hour: "3 years ago",
	} {
		if got := relTime(now, now.Add(d)); got != want {
			t.Errorf("relTime(%v) = %q, want %q", d, got, want)
		}
	}
}
