package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/storage"
)

func renewFlags(t *testing.T, st storage.Store, certs ...*acme.Certificate) []bool {
	t.Helper()
	var out []bool
	for _, c := range certs {
		got, err := st.GetCertificate(context.Background(), c.ID)
		must(t, err)
		out = append(out, got.RenewNow)
	}
	return out
}

// "Renew now" for one certificate, for a name pattern and for an account,
// each behind a confirmation page and each audited.
func TestRenewNow(t *testing.T) {
	f := newFixture(t)
	c := f.signedIn()
	later := time.Now().Add(60 * 24 * time.Hour)
	a := seedCert(t, f.store, "a.payments.internal", later)
	b := seedCert(t, f.store, "b.payments.internal", later)
	old := seedCert(t, f.store, "old.payments.internal", time.Now().Add(-time.Hour))
	other := seedCert(t, f.store, "api.example.test", later)

	// One certificate.
	_, page := f.get(c, "/certificates/"+a.ID)
	if !strings.Contains(page, `href="/certificates/`+a.ID+`/renew"`) || strings.Contains(page, `id="renew-note"`) {
		t.Fatalf("certificate page before: no renew button or a note already\n%s", page)
	}
	resp, confirm := f.get(c, "/certificates/"+a.ID+"/renew")
	if resp.StatusCode != http.StatusOK || !strings.Contains(confirm, "Ask clients to renew now?") || !strings.Contains(confirm, a.Serial) {
		t.Fatalf("confirmation: %d\n%s", resp.StatusCode, confirm)
	}
	if got := renewFlags(t, f.store, a); got[0] {
		t.Fatal("the confirmation page changed something")
	}
	resp, _ = f.post(c, "/certificates/"+a.ID+"/renew", url.Values{"csrf_token": {csrfOf(t, confirm)}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/certificates/"+a.ID {
		t.Fatalf("renew one: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := renewFlags(t, f.store, a, b, old, other); got[0] != true || got[1] || got[2] || got[3] {
		t.Fatalf("after renewing one: %v", got)
	}
	_, page = f.get(c, "/certificates/"+a.ID)
	if !strings.Contains(page, `id="renew-note"`) || strings.Contains(page, `/renew"`) {
		t.Fatalf("certificate page after: no note, or the button is still there\n%s", page)
	}
	// An expired certificate has nothing to renew.
	resp, _ = f.post(c, "/certificates/"+old.ID+"/renew", url.Values{"csrf_token": {csrfOf(t, confirm)}})
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("renew expired: %d, want 409", resp.StatusCode)
	}

	// A name pattern, from the form on /certificates.
	_, list := f.get(c, "/certificates")
	if !strings.Contains(list, `action="/certificates/renew"`) {
		t.Fatal("no renew-by-pattern form on /certificates")
	}
	resp, confirm = f.get(c, "/certificates/renew?pattern="+url.QueryEscape(" *.Payments.internal "))
	if resp.StatusCode != http.StatusOK || !strings.Contains(confirm, `name="pattern" value="*.payments.internal"`) {
		t.Fatalf("pattern confirmation: %d\n%s", resp.StatusCode, confirm)
	}
	resp, body := f.post(c, "/certificates/renew", url.Values{"csrf_token": {csrfOf(t, confirm)}, "pattern": {"*.payments.internal"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="renew-count">2<`) {
		t.Fatalf("renew pattern: %d\n%s", resp.StatusCode, body)
	}
	if got := renewFlags(t, f.store, a, b, old, other); !got[0] || !got[1] || got[2] || got[3] {
		t.Fatalf("after the pattern: %v", got)
	}
	for _, bad := range []string{"", "*", "*.", "a b.internal", "%.internal", "api.*.internal"} {
		resp, _ := f.get(c, "/certificates/renew?pattern="+url.QueryEscape(bad))
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("pattern %q: %d, want 400", bad, resp.StatusCode)
		}
	}

	// Every certificate of an account.
	_, page = f.get(c, "/accounts/"+other.AccountID)
	if !strings.Contains(page, `href="/accounts/`+other.AccountID+`/renew"`) {
		t.Fatal("no renew button on the account page")
	}
	_, confirm = f.get(c, "/accounts/"+other.AccountID+"/renew")
	resp, body = f.post(c, "/accounts/"+other.AccountID+"/renew", url.Values{"csrf_token": {csrfOf(t, confirm)}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="renew-count">1<`) {
		t.Fatalf("renew account: %d\n%s", resp.StatusCode, body)
	}
	if got := renewFlags(t, f.store, other, old); !got[0] || got[1] {
		t.Fatalf("after the account: %v", got)
	}
	// Without the CSRF token nothing happens.
	resp, _ = f.post(c, "/accounts/"+old.AccountID+"/renew", url.Values{})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST without token: %d, want 403", resp.StatusCode)
	}

	if got := auditActions(t, f.store); strings.Count(got, "admin:certificate.renew_now") != 3 {
		t.Errorf("audit: %s", got)
	}
	evs, err := f.store.ListAuditEvents(context.Background(), "renew_now", storage.Page{})
	must(t, err)
	if len(evs) != 3 || evs[1].Target != "names/*.payments.internal" || !strings.Contains(evs[1].Detail, "2 certificate(s)") {
		t.Errorf("audit events: %+v", evs)
	}
}
