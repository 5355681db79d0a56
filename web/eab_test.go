package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/acme/eab"
	"github.com/certmint/certmint/storage"
)

var (
	kidRE  = regexp.MustCompile(`id="eab-kid">([^<]+)<`)
	hmacRE = regexp.MustCompile(`id="eab-hmac">([^<]+)<`)
)

// The HMAC key is shown once, on the creation response, and nowhere else:
// not on the list, not in the audit log, not in the server log.
func TestEABCreateShowsHMACOnce(t *testing.T) {
	f := newFixture(t)
	var logs bytes.Buffer
	f.srv.log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := f.signedIn()

	resp, page := f.get(c, "/eab")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "No EAB keys yet") || !strings.Contains(page, `aria-current="page">EAB keys`) {
		t.Fatalf("empty /eab: %d\n%s", resp.StatusCode, page)
	}
	resp, body := f.post(c, "/eab", url.Values{"csrf_token": {csrfOf(t, page)}, "label": {"payments team"},
		"allow": {"*.payments.internal\r\n\r\n 10.20.0.0/16 \r\n"}, "reusable": {"1"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create: %d\n%s", resp.StatusCode, body)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("result page Cache-Control %q, want no-store", cc)
	}
	km, hm := kidRE.FindStringSubmatch(body), hmacRE.FindStringSubmatch(body)
	if km == nil || hm == nil {
		t.Fatalf("no KID or HMAC on the result page:\n%s", body)
	}
	kid, mac := km[1], hm[1]
	k, err := f.store.GetEABKey(context.Background(), kid)
	must(t, err)
	raw, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil || !bytes.Equal(raw, k.HMACKey) || len(raw) != 32 {
		t.Fatalf("shown HMAC %q is not the stored 256-bit key (decode err %v)", mac, err)
	}
	if k.Label != "payments team" || !k.Reusable || !slices.Equal(k.Allow, []string{"*.payments.internal", "10.20.0.0/16"}) {
		t.Fatalf("stored key: label %q reusable %v allow %q", k.Label, k.Reusable, k.Allow)
	}

	_, list := f.get(c, "/eab")
	if !strings.Contains(list, kid) || !strings.Contains(list, "payments team") || !strings.Contains(list, "*.payments.internal") ||
		!strings.Contains(list, "reusable") {
		t.Fatalf("key not listed:\n%s", list)
	}
	evs, err := f.store.ListAuditEvents(context.Background(), "", storage.Page{})
	must(t, err)
	var audit strings.Builder
	for _, e := range evs {
		audit.WriteString(e.Action + " " + e.Target + " " + e.Detail + "\n")
	}
	if !strings.Contains(audit.String(), "eab.create eab/"+kid) {
		t.Errorf("no audit event for the creation:\n%s", audit.String())
	}
	for where, text := range map[string]string{"list page": list, "audit log": audit.String(), "server log": logs.String()} {
		if strings.Contains(text, mac) {
			t.Errorf("HMAC key appears in the %s", where)
		}
	}
}

func TestEABCreateRejectsBadAllow(t *testing.T) {
	f := newFixture(t)
	c := f.signedIn()
	_, page := f.get(c, "/eab")
	resp, body := f.post(c, "/eab", url.Values{"csrf_token": {csrfOf(t, page)}, "label": {"typo"}, "allow": {"payments.internal\n10.0.0.0/33"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="eab-error"`) || !strings.Contains(body, "10.0.0.0/33") {
		t.Fatalf("bad allow entry: %d\n%s", resp.StatusCode, body)
	}
	keys, err := f.store.ListEABKeys(context.Background(), "", storage.Page{})
	must(t, err)
	if len(keys) != 0 {
		t.Fatalf("a key was created from a bad form: %+v", keys)
	}
	// Without the CSRF token nothing is created either.
	resp, _ = f.post(c, "/eab", url.Values{"label": {"forged"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST /eab without token: %d, want 403", resp.StatusCode)
	}
}

func TestEABAccountsAndRevoke(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.signedIn()
	k := &eab.Key{ID: "kid-payments", HMACKey: []byte("0123456789abcdef0123456789abcdef"), Label: "payments"}
	must(t, f.store.CreateEABKey(ctx, k))
	acct := &acme.Account{KeyThumbprint: "tp-eab", KeyJWK: "{}", Status: acme.StatusValid, EABKeyID: k.ID}
	must(t, f.store.CreateAccount(ctx, acct))
	must(t, f.store.BindEABKey(ctx, k.ID, acct.ID, time.Now()))

	_, list := f.get(c, "/eab")
	if !strings.Contains(list, `href="/accounts/`+acct.ID+`"`) || !strings.Contains(list, "used") {
		t.Fatalf("the account bound with the key is not shown:\n%s", list)
	}
	if strings.Contains(list, "0123456789abcdef") {
		t.Fatal("the list shows the HMAC key")
	}
	resp, confirm := f.get(c, "/eab/"+k.ID+"/revoke")
	if resp.StatusCode != http.StatusOK || !strings.Contains(confirm, "Revoke this key?") || !strings.Contains(confirm, acct.ID[:12]) {
		t.Fatalf("confirmation page: %d\n%s", resp.StatusCode, confirm)
	}
	resp, _ = f.post(c, "/eab/"+k.ID+"/revoke", url.Values{"csrf_token": {csrfOf(t, confirm)}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/eab" {
		t.Fatalf("revoke: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	got, err := f.store.GetEABKey(ctx, k.ID)
	must(t, err)
	if !got.Revoked {
		t.Fatal("key not revoked")
	}
	_, list = f.get(c, "/eab")
	if !strings.Contains(list, `badge revoked`) || strings.Contains(list, "/eab/"+k.ID+"/revoke") {
		t.Errorf("revoked key shown wrongly:\n%s", list)
	}
	resp, _ = f.post(c, "/eab/"+k.ID+"/revoke", url.Values{"csrf_token": {csrfOf(t, confirm)}})
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("second revoke: %d, want 409", resp.StatusCode)
	}
	resp, _ = f.get(c, "/eab/nope/revoke")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown key: %d, want 404", resp.StatusCode)
	}
	if got := auditActions(t, f.store); !strings.HasSuffix(got, "admin:eab.revoke") {
		t.Errorf("audit: %s", got)
	}
}

// The new pages and actions need a session like every other.
func TestEABAndRenewNeedSession(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	for _, p := range []string{"/eab", "/eab/x/revoke", "/certificates/renew?pattern=a.test", "/certificates/x/renew", "/accounts/x/renew"} {
		resp, _ := f.get(c, p)
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
			t.Errorf("GET %s: %d %q, want 303 to /login", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	for _, p := range []string{"/eab", "/eab/x/revoke", "/certificates/renew", "/certificates/x/renew", "/accounts/x/renew"} {
		resp, _ := f.post(c, p, url.Values{"csrf_token": {"x"}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
			t.Errorf("POST %s: %d %q, want 303 to /login", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}
