package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/go-acme/lego/v4/certificate"
)

// TestWorkloadIdentityConsoleBrowser drives the console in Chromium: a bad
// workload path on the EAB page is refused next to its field; a good one
// makes a key that binds spiffe://corp.example/payments/sender; lego
// registers with it; the identity is then shown on the account page and
// found by the certificates and inventory searches. Screenshots go to a
// folder it prints.
func TestWorkloadIdentityConsoleBrowser(t *testing.T) {
	ctx := newBrowser(t)
	s := startIdentityServer(t)
	obtainWithLego(t, s, "plain.console.test") // a certificate without an identity, which searches must leave out
	pw, err := os.ReadFile(filepath.Join(s.Data, "initial-admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	shots := filepath.Join(os.TempDir(), "certmint-identity-screenshots")
	_ = os.RemoveAll(shots)
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("workload identity screenshots: %s", shots)
	b := &browser{t: t, ctx: ctx, base: s.AdminURL(), shots: shots}
	b.login("admin", strings.TrimSpace(string(pw)))

	b.open("/eab")
	if hint := b.text("#eab-create"); !strings.Contains(hint, "spiffe://corp.example/PATH") {
		t.Fatalf("the form does not say what the workload becomes: %q", hint)
	}
	b.do("fill a bad workload path",
		chromedp.SendKeys(`#eab-create input[name=label]`, "payments sender"),
		chromedp.SendKeys(`#eab-create input[name=workload]`, "payments/../admin"))
	b.submit(`#eab-create button[type=submit]`)
	if got := b.text("#eab-workload-error"); !strings.Contains(got, "dot segments") {
		t.Fatalf("error for a bad path: %q", got)
	}
	// Next to the field: in the same paragraph as the workload input.
	if !eval[bool](b, `document.querySelector('#eab-workload-error').closest('p').querySelector('input[name=workload]') !== null`) {
		t.Fatal("the workload error is not next to the workload field")
	}
	b.shot("eab-workload-error")
	eval[bool](b, `(document.querySelector('#eab-create input[name=workload]').value = '') === ''`)
	b.do("correct the path", chromedp.SendKeys(`#eab-create input[name=workload]`, "payments/sender"))
	b.submit(`#eab-create button[type=submit]`)
	kid, hmac := b.text("#eab-kid"), b.text("#eab-hmac")
	if got := b.text("#eab-identity"); got != senderID {
		t.Fatalf("the created key binds %q, want %s", got, senderID)
	}
	b.shot("eab-workload-created")

	client, err := newLegoEABClient(t, s, kid, hmac)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"console.pay.test"}, Bundle: true}); err != nil {
		t.Fatalf("obtain with the console's key: %v\n%s", err, s.Output())
	}

	b.open("/certificates")
	b.do("search certificates by identity", chromedp.SendKeys(`form.filters input[name=q]`, senderID))
	b.submit(`form.filters button[type=submit]`)
	if got := b.text("table.list"); !strings.Contains(got, "console.pay.test") || !strings.Contains(got, senderID) || strings.Contains(got, "plain.console.test") {
		t.Fatalf("certificates matching %s: %q", senderID, got)
	}
	b.shot("certificates-by-identity")

	b.open("/inventory")
	b.do("search the inventory by identity prefix", chromedp.SendKeys(`#inventory-filter input[name=name]`, "spiffe://corp.example/payments/*"))
	b.submit(`#inventory-filter button[type=submit]`)
	if got := b.text("#inventory"); !strings.Contains(got, "console.pay.test") || !strings.Contains(got, senderID) || strings.Contains(got, "plain.console.test") {
		t.Fatalf("inventory matching the identity: %q", got)
	}
	b.shot("inventory-by-identity")

	b.submit(`#inventory a[href^="/accounts/"]`)
	if got := b.text("#account-identity"); got != senderID {
		t.Fatalf("the account page shows identity %q", got)
	}
	b.shot("account-identity")
	b.open("/eab?q=payments%2Fsender")
	if got := b.text("#eab-keys"); !strings.Contains(got, kid) || !strings.Contains(got, senderID) {
		t.Fatalf("EAB keys matching the identity: %q", got)
	}
	b.open("/ca")
	if got := b.text("#ca-trust-domain"); !strings.Contains(got, "corp.example") || !strings.Contains(got, "/spiffe/bundle") {
		t.Fatalf("CA page trust domain: %q", got)
	}
	b.open("/settings")
	if got := b.text("main"); !strings.Contains(got, "trust-domain") || !strings.Contains(got, "corp.example") {
		t.Fatalf("Settings do not show the trust domain: %q", got)
	}
}
