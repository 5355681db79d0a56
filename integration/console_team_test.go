package integration

import (
	"context"
	"encoding/csv"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// eval runs a script in the page and returns its (awaited) result.
func eval[T any](b *browser, script string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](script, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", script, err)
	}
	return v
}

// oidcLogin signs in through the provider's own login page.
func (b *browser) oidcLogin(user string) {
	b.t.Helper()
	b.open("/login")
	b.submit(`#oidc-login`)
	b.do("fill the provider's login form",
		chromedp.WaitVisible(`input[name=username]`),
		chromedp.SendKeys(`input[name=username]`, user),
		chromedp.SendKeys(`input[name=password]`, opPassword))
	b.submit(`button[type=submit]`)
	// The callback's page moves on to the console by itself.
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if loc := b.location(); strings.HasPrefix(loc, b.base) && !strings.Contains(loc, "/oidc/callback") {
			return
		}
		if txt := eval[string](b, `document.body ? document.body.innerText : ""`); strings.Contains(txt, "Sign-in refused") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestConsoleTeam shows issue 20 with a real OpenID provider (zitadel's
// example OP) and the real binary in one Chromium: OIDC roles, a local
// viewer and its forged POST, disabling a user, settings with their
// source, and the audit log's filter, export and width.
func TestConsoleTeam(t *testing.T) {
	ctx := newBrowser(t)
	provider := startOP(t)
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "oidc-secret")
	if err := os.WriteFile(secretFile, []byte("console-client-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := StartServer(t, ServerOptions{
		Args: []string{"--oidc-issuer", provider.Issuer, "--oidc-client-id", "certmint-console",
			"--oidc-client-secret-file", secretFile, "--oidc-role-map", "pki-ops=operator,pki-admins=admin",
			"--allow-domain", "test"},
		Env: []string{"CERTMINT_RATE_LIMIT_NEW_ORDER_PER_ACCOUNT=777/3h"},
	})
	provider.Configure("certmint-console", "console-client-secret", s.AdminURL()+"/oidc/callback",
		opUser{ID: "u-alice", Name: "alice", Groups: []string{"staff", "pki-ops"}},
		opUser{ID: "u-bob", Name: "bob", Groups: []string{"staff"}})
	_, opsCert := obtainWithLegoClient(t, s, "ops-revoke.test")
	_, viewerCert := obtainWithLegoClient(t, s, "viewer-target.test")
	_ = opsCert
	shots := screenshotDir(t)
	b := &browser{t: t, ctx: ctx, base: s.AdminURL(), shots: shots, n: 60}
	t.Logf("screenshots: %s", shots)

	// OIDC roles: alice (pki-ops) lands as operator and can revoke.
	b.open("/login")
	b.shot("login-sso")
	b.oidcLogin("alice")
	if loc := b.location(); loc != b.base+"/" {
		t.Fatalf("alice after OIDC sign-in at %s\n%s", loc, s.Output())
	}
	if role := b.text("#my-role"); role != "operator" {
		t.Fatalf("alice signed in as %q, want operator", role)
	}
	b.open("/certificates?q=ops-revoke")
	b.submit(`table.list tbody a[href^="/certificates/"]`)
	b.submit(`a.button.danger`)
	b.submit(`#confirm-revoke`)
	if st := b.text("#cert-state"); st != "revoked" {
		t.Fatalf("operator's revocation: state %q", st)
	}
	b.open("/users")
	if got := b.text("main"); !strings.Contains(got, "403") || !strings.Contains(got, "admin role") {
		t.Fatalf("operator on /users sees %q, want 403", got)
	}
	b.shot("operator-users-403")
	b.submit(`form.who button`)

	// A callback whose state is not this browser's sign-in is refused.
	b.open("/oidc/login") // sets the flow cookie, leaves for the provider
	b.open("/oidc/callback?state=forged&code=stolen")
	if got := b.text("main"); !strings.Contains(got, "state parameter does not match") {
		t.Fatalf("forged callback state: %q", got)
	}

	// bob is in no mapped group: refused, with the reason.
	b.oidcLogin("bob")
	if got := b.text("main"); !strings.Contains(got, "Sign-in refused") || !strings.Contains(got, "none of them has a role") {
		t.Fatalf("bob sees %q, want a refusal that says why", got)
	}
	b.shot("oidc-refused")

	// Local roles: a viewer sees no revoke button; its forged POST is 403.
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("viewer-password-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := runCLI(t, nil, "admin", "user", "add", "vera", "--role", "viewer", "--data", s.Data, "--password-file", pwFile); code != 0 {
		t.Fatalf("admin user add --role viewer: %d %s %s", code, out, errOut)
	}
	b.login("vera", "viewer-password-1")
	if role := b.text("#my-role"); role != "viewer" {
		t.Fatalf("vera signed in as %q", role)
	}
	viewerID := ""
	b.open("/certificates?q=viewer-target")
	b.submit(`table.list tbody a[href^="/certificates/"]`)
	viewerID = strings.TrimPrefix(b.location(), b.base+"/certificates/")
	if n := eval[int](b, `document.querySelectorAll('a[href$="/revoke"], a[href$="/renew"]').length`); n != 0 {
		t.Fatalf("viewer sees %d revoke/renew buttons", n)
	}
	b.shot("viewer-certificate")
	forged := eval[int](b, `(async () => {
		const token = document.querySelector('input[name=csrf_token]').value;
		const r = await fetch(location.pathname + '/revoke', {method: 'POST', body: new URLSearchParams({csrf_token: token, reason: '1'})});
		return r.status; })()`)
	if forged != http.StatusForbidden {
		t.Fatalf("viewer's forged revoke POST: %d, want 403", forged)
	}
	b.open("/certificates/" + viewerID)
	if st := b.text("#cert-state"); st != "valid" {
		t.Fatalf("after the forged POST the certificate is %q", st)
	}
	_ = viewerCert

	// A second session of vera, outside the browser, to be cut off.
	vc := consoleClient(s)
	if code, _ := formLogin(t, s, vc, "vera", "viewer-password-1"); code != http.StatusSeeOther {
		t.Fatalf("vera's second sign-in: %d", code)
	}
	if r := mustGet(t, vc, s.AdminURL()+"/"); r.StatusCode != http.StatusOK {
		t.Fatalf("vera's session: %d", r.StatusCode)
	}
	b.submit(`form.who button`)

	// User administration: the admin disables vera; her open session
	// stops working at its next request.
	pw, _ := os.ReadFile(filepath.Join(s.Data, "initial-admin-password"))
	b.login("admin", strings.TrimSpace(string(pw)))
	b.open("/users")
	if got := b.text("#users"); !strings.Contains(got, "alice") || !strings.Contains(got, "identity provider") {
		t.Fatalf("users page lacks the OIDC user alice: %q", got)
	}
	b.shot("users")
	b.open("/users/vera")
	if got := b.text("#sessions"); !strings.Contains(got, "127.0.0.1") {
		t.Fatalf("vera's sessions: %q", got)
	}
	b.submit(`#user-toggle button`)
	if st := b.text("#user-state"); st != "disabled" {
		t.Fatalf("after Disable vera is %q", st)
	}
	b.shot("user-disabled")
	r := mustGet(t, vc, s.AdminURL()+"/")
	if loc := r.Header.Get("Location"); r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
		t.Fatalf("disabled vera's next request: %d to %q, want the sign-in page", r.StatusCode, loc)
	}
	if code, body := formLogin(t, s, vc, "vera", "viewer-password-1"); code != http.StatusForbidden || !strings.Contains(body, "disabled") {
		t.Fatalf("disabled vera signs in: %d", code)
	}

	// Settings: the value the test set, and where it came from.
	b.open("/settings")
	for id, want := range map[string][]string{
		"#setting-allow-domain":                     {"test", "flag"},
		"#setting-rate-limit-new-order-per-account": {"777/3h", "environment"},
		"#setting-http01-port":                      {"flag"},
		"#setting-no-wildcards":                     {"false", "default"},
	} {
		got := b.text(id)
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("settings %s = %q, want %q", id, got, w)
			}
		}
	}
	if got := b.text("#settings"); strings.Contains(got, "console-client-secret") {
		t.Error("settings show the OIDC client secret")
	}
	b.shot("settings")

	// Audit: filtering by action returns only that action...
	b.open("/audit?action=access.denied")
	actions := eval[[]string](b, `[...document.querySelectorAll('table.audit tbody tr td:nth-child(3)')].map(td => td.innerText.trim())`)
	if len(actions) < 2 {
		t.Fatalf("audit filtered by access.denied shows %d rows, want the operator's /users and vera's forged POST", len(actions))
	}
	for _, a := range actions {
		if a != "access.denied" {
			t.Fatalf("audit filtered by action shows %q", a)
		}
	}
	if got := b.text("table.audit tbody"); !strings.Contains(got, "vera") || !strings.Contains(got, "POST /certificates/"+viewerID+"/revoke") {
		t.Fatalf("the forged POST is not audited:\n%s", got)
	}
	// ... the exports download the same rows ...
	type row struct{ Actor, Action, Target string }
	var page []row
	for _, tr := range eval[[][]string](b, `[...document.querySelectorAll('table.audit tbody tr')].map(tr => [...tr.children].map(td => td.title || td.innerText.trim()))`) {
		page = append(page, row{tr[1], tr[2], tr[3]})
	}
	jsonRows := eval[[]row](b, `fetch(document.querySelector('#export-json').href).then(r => r.json()).then(a => a.map(e => ({Actor: e.actor, Action: e.action, Target: e.target})))`)
	if !equalRows(page, jsonRows) {
		t.Fatalf("JSON export %v, page %v", jsonRows, page)
	}
	csvText := eval[string](b, `fetch(document.querySelector('#export-csv').href).then(r => r.text())`)
	recs, err := csv.NewReader(strings.NewReader(csvText)).ReadAll()
	if err != nil || len(recs) != len(page)+1 {
		t.Fatalf("CSV export: %d records (%v), want %d rows and a header", len(recs), err, len(page))
	}
	for i, rec := range recs[1:] {
		if (row{rec[2], rec[3], rec[4]}) != page[i] {
			t.Fatalf("CSV row %d %v, page %v", i, rec, page[i])
		}
	}
	// ... and the whole log fits a 1280 px window.
	b.do("1280x900", chromedp.EmulateViewport(1280, 900))
	b.open("/audit?all=1")
	if total := b.text("#audit-total"); total == "0" {
		t.Fatal("audit total is 0")
	}
	sw := eval[int](b, `document.documentElement.scrollWidth`)
	cw := eval[int](b, `document.documentElement.clientWidth`)
	b.shot("audit-1280")
	if sw > cw {
		t.Fatalf("audit at 1280 px: scrollWidth %d > clientWidth %d", sw, cw)
	}
	t.Logf("audit at 1280x900: scrollWidth %d, clientWidth %d", sw, cw)
	b.open("/audit?" + url.Values{"action": {"certificate.issue"}}.Encode())
	if got := b.text("table.audit tbody"); !strings.Contains(got, "certificate.issue") {
		t.Fatalf("certificate.issue not found when asked for: %q", got)
	}
}

func equalRows[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
