package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/storage"
)

// TestEABWorkloadField: the EAB form binds a workload identity; a bad
// path, or any path while the server has no trust domain, is refused
// next to the field and creates nothing.
func TestEABWorkloadField(t *testing.T) {
	f := newFixture(t)
	c := f.signedIn()
	create := func(workload string) (*http.Response, string) {
		_, page := f.get(c, "/eab")
		return f.post(c, "/eab", url.Values{"csrf_token": {csrfOf(t, page)}, "label": {"payments"}, "workload": {workload}})
	}
	refused := func(name, workload, want string) {
		t.Helper()
		resp, body := create(workload)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="eab-workload-error"`) || !strings.Contains(body, want) {
			t.Fatalf("%s: %d, want 400 with %q next to the field:\n%s", name, resp.StatusCode, want, body)
		}
		if !strings.Contains(body, `value="`+workload+`"`) {
			t.Errorf("%s: the form lost what was typed", name)
		}
	}
	refused("no trust domain", "payments/sender", "--trust-domain")

	f.srv.cfg.TrustDomain = spiffeid.RequireTrustDomainFromString("corp.example")
	refused("dot segment", "payments/../admin", "dot segments")
	refused("empty segment", "payments//sender", "empty segments")
	refused("percent-encoding", "payments/s%65nder", "characters are limited")
	refused("whole ID", "spiffe://corp.example/payments/sender", "path only")
	refused("over 2048 bytes", strings.Repeat("a", 2040), "2048")
	keys, err := f.store.ListEABKeys(context.Background(), "", storage.Page{})
	must(t, err)
	if len(keys) != 0 {
		t.Fatalf("refused forms created %d keys", len(keys))
	}

	resp, body := create("payments/sender")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<code id="eab-identity">spiffe://corp.example/payments/sender</code>`) {
		t.Fatalf("create: %d\n%s", resp.StatusCode, body)
	}
	kid := kidRE.FindStringSubmatch(body)[1]
	k, err := f.store.GetEABKey(context.Background(), kid)
	must(t, err)
	if k.Workload != "/payments/sender" {
		t.Fatalf("stored workload %q", k.Workload)
	}
	if _, list := f.get(c, "/eab?q=spiffe://corp.example/payments/sender"); !strings.Contains(list, kid) || !strings.Contains(list, "spiffe://corp.example/payments/sender") {
		t.Fatalf("search by identity on /eab does not find the key:\n%s", list)
	}
	if _, list := f.get(c, "/eab?q=billing"); strings.Contains(list, kid) || !strings.Contains(list, "No keys match") {
		t.Fatalf("search for another identity lists the key")
	}
	if audit := auditDetails(t, f.store); !strings.Contains(audit, "workload /payments/sender") {
		t.Errorf("audit lacks the workload: %s", audit)
	}
}

// TestIdentityShownAndSearched: an account's workload identity and its
// certificate's are shown on the account, certificate and inventory pages
// and found by their search boxes.
func TestIdentityShownAndSearched(t *testing.T) {
	f := newFixture(t)
	f.srv.cfg.TrustDomain = spiffeid.RequireTrustDomainFromString("corp.example")
	c := f.signedIn()
	const id = "spiffe://corp.example/payments/sender"
	acct := &acme.Account{KeyThumbprint: "tp-w", KeyJWK: "{}", Status: acme.StatusValid, Workload: "/payments/sender"}
	must(t, f.store.CreateAccount(context.Background(), acct))
	cert := seedCertFor(t, f.store, acct, "pay.internal", "", id, time.Now().Add(60*24*time.Hour))
	other := seedCert(t, f.store, "other.internal", time.Now().Add(60*24*time.Hour))

	for _, tc := range []struct{ path, want, not string }{
		{"/accounts?q=" + url.QueryEscape(id), acct.ID, other.AccountID},
		{"/accounts/" + acct.ID, `<code id="account-identity">` + id + `</code>`, ""},
		{"/certificates?q=payments%2Fsender", cert.ID, other.ID},
		{"/certificates/" + cert.ID, `<code id="cert-identity">` + id + `</code>`, ""},
		{"/inventory?name=" + url.QueryEscape("spiffe://corp.example/payments/*"), cert.ID, other.ID},
		{"/inventory", id, ""},
	} {
		resp, page := f.get(c, tc.path)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, tc.want) || (tc.not != "" && strings.Contains(page, tc.not)) {
			t.Errorf("%s: %d, want %q and not %q:\n%s", tc.path, resp.StatusCode, tc.want, tc.not, page)
		}
	}
}

func auditDetails(t *testing.T, st storage.Store) string {
	evs, err := st.ListAuditEvents(context.Background(), "", storage.Page{})
	must(t, err)
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(e.Action + " " + e.Detail + "\n")
	}
	return b.String()
}
