package integration

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

var (
	consoleKID  = regexp.MustCompile(`id="eab-kid">([^<]+)<`)
	consoleHMAC = regexp.MustCompile(`id="eab-hmac">([^<]+)<`)
)

// TestEABConsole: an operator creates a reusable EAB key on /eab; lego
// registers with it on a server that requires EAB; /eab shows the account
// that used it and never the HMAC again; once revoked in the console the
// key binds no further account.
func TestEABConsole(t *testing.T) {
	s := StartServer(t, ServerOptions{Args: []string{"--eab-required"}})
	c := signedInConsole(t, s)
	status, _, page := consolePost(t, s, c, "/eab", url.Values{"label": {"team blue"}, "allow": {"*.blue.test"}, "reusable": {"1"}})
	km, hm := consoleKID.FindStringSubmatch(page), consoleHMAC.FindStringSubmatch(page)
	if status != http.StatusOK || km == nil || hm == nil {
		t.Fatalf("create key in the console: %d\n%s", status, page)
	}
	kid, hmac := km[1], hm[1]

	if _, err := newLegoEABClient(t, s, kid, hmac); err != nil {
		t.Fatalf("lego register with the console's key: %v\nserver:\n%s", err, s.Output())
	}

	list := mustBody(t, c, s.AdminURL()+"/eab")
	if !strings.Contains(list, kid) || !strings.Contains(list, "team blue") || !strings.Contains(list, `href="/accounts/`) {
		t.Fatalf("/eab does not show the key and its account:\n%s", list)
	}
	if strings.Contains(list, hmac) {
		t.Fatal("/eab shows the HMAC key again")
	}

	status, loc, body := consolePost(t, s, c, "/eab/"+kid+"/revoke", nil)
	if status != http.StatusSeeOther || loc != "/eab" {
		t.Fatalf("revoke in the console: %d %q\n%s", status, loc, body)
	}
	_, err := newLegoEABClient(t, s, kid, hmac)
	wantProblem(t, err, "unauthorized", http.StatusForbidden)
	if audit := mustBody(t, c, s.AdminURL()+"/audit?q=eab"); !strings.Contains(audit, "eab.create") || !strings.Contains(audit, "eab.revoke") {
		t.Errorf("/audit lacks eab.create or eab.revoke")
	}
	if strings.Contains(s.Output(), hmac) {
		t.Error("the server log contains the HMAC key")
	}
}

// TestEABConsoleBrowser drives /eab and "renew now" in headless Chromium:
// create a key from the form, see the HMAC once, then mark a name pattern
// for renewal from /certificates. Screenshots go to a folder it prints.
func TestEABConsoleBrowser(t *testing.T) {
	ctx := newBrowser(t)
	s := StartServer(t, ServerOptions{})
	obtainWithLego(t, s, "api.blue.test")
	pw, err := os.ReadFile(filepath.Join(s.Data, "initial-admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	shots := filepath.Join(os.TempDir(), "certmint-eab-screenshots")
	_ = os.RemoveAll(shots)
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("EAB and renew-now screenshots: %s", shots)
	b := &browser{t: t, ctx: ctx, base: s.AdminURL(), shots: shots}
	b.login("admin", strings.TrimSpace(string(pw)))

	b.open("/eab")
	if got := b.text("main"); !strings.Contains(got, "No EAB keys yet") {
		t.Fatalf("/eab empty state: %q", got)
	}
	b.do("fill the key form",
		chromedp.SendKeys(`#eab-create input[name=label]`, "team blue"),
		chromedp.SendKeys(`#eab-create textarea[name=allow]`, "*.blue.test\n10.1.0.0/16"),
		chromedp.Click(`#eab-create input[name=reusable]`))
	b.shot("eab-form")
	b.submit(`#eab-create button[type=submit]`)
	hmac := b.text("#eab-hmac")
	if len(hmac) != 43 {
		t.Fatalf("HMAC on the result page: %q", hmac)
	}
	b.shot("eab-created")
	b.open("/eab")
	if got := b.text("#eab-keys"); !strings.Contains(got, "team blue") || !strings.Contains(got, "*.blue.test") || strings.Contains(got, hmac) {
		t.Fatalf("key list: %q", got)
	}
	b.shot("eab-list")
	b.submit(`#eab-keys a.button.danger`)
	b.shot("eab-revoke-confirm")
	b.submit(`#confirm-eab-revoke`)
	if got := b.text("#eab-keys"); !strings.Contains(got, "revoked") {
		t.Fatalf("key not shown revoked: %q", got)
	}

	b.open("/certificates")
	b.do("fill the pattern", chromedp.SendKeys(`#renew-pattern-input`, "*.blue.test"))
	b.shot("certificates-renew-form")
	b.submit(`#renew-pattern button[type=submit]`)
	b.shot("renew-confirm")
	b.submit(`#confirm-renew`)
	if n := b.text("#renew-count"); n != "1" {
		t.Fatalf("renew-now marked %s certificates, want 1", n)
	}
	b.shot("renew-done")
	b.open("/certificates?q=api.blue.test")
	b.submit(`table.list tbody a[href^="/certificates/"]`)
	if note := b.text("#renew-note"); !strings.Contains(note, "Renewal requested") {
		t.Fatalf("certificate page note: %q", note)
	}
	b.shot("certificate-renew-requested")
}
