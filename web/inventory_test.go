package web

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The inventory shows a lineage in the state the time puts it in, the
// dashboard counts the overdue ones and links to them.
func TestInventoryAndOverdueTile(t *testing.T) {
	f := newFixture(t)
	c := f.signedIn()
	now := time.Now()
	// seedCert's certificates live 90 days: one ending in 10 days is
	// past 5/6 of its life (overdue), one ending in 60 days is healthy.
	late := seedCert(t, f.store, "late.fleet.test", now.Add(10*24*time.Hour))
	seedCert(t, f.store, "fine.fleet.test", now.Add(60*24*time.Hour))

	resp, page := f.get(c, "/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `<span class="n" id="count-overdue">1</span>`) ||
		!strings.Contains(page, `href="/inventory?state=overdue"`) {
		t.Fatalf("dashboard: %d\n%s", resp.StatusCode, page)
	}
	_, page = f.get(c, "/inventory?state=overdue")
	if !strings.Contains(page, "late.fleet.test") || strings.Contains(page, "fine.fleet.test") ||
		!strings.Contains(page, `id="lineage-`+late.ID+`" data-state="overdue"`) || !strings.Contains(page, `aria-current="page">Inventory`) {
		t.Fatalf("/inventory?state=overdue:\n%s", page)
	}
	_, page = f.get(c, "/inventory?name=fine*")
	if !strings.Contains(page, "fine.fleet.test") || strings.Contains(page, "late.fleet.test") || !strings.Contains(page, `data-state="healthy"`) {
		t.Fatalf("/inventory?name=fine*:\n%s", page)
	}
	if resp, _ := f.get(c, "/inventory?state=bogus"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown state: %d", resp.StatusCode)
	}
}

// An endpoint added in the console is listed without its secret; a bad
// URL is refused next to its field; the secret is in no page or log.
func TestWebhookPage(t *testing.T) {
	f := newFixture(t)
	var logs bytes.Buffer
	f.srv.log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := f.signedIn()
	_, page := f.get(c, "/webhooks")
	const secret = "hunter2-hunter2-hunter2"
	resp, body := f.post(c, "/webhooks", url.Values{"csrf_token": {csrfOf(t, page)}, "url": {"http://169.254.169.254/latest"},
		"secret": {secret}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="webhook-error"`) || !strings.Contains(body, "169.254.169.254") {
		t.Fatalf("metadata URL: %d\n%s", resp.StatusCode, body)
	}
	resp, _ = f.post(c, "/webhooks", url.Values{"csrf_token": {csrfOf(t, page)}, "url": {"https://hooks.example.test/certmint"},
		"secret": {secret}, "events": {"renewal.overdue", "certificate.issued"}})
	_, body = f.get(c, "/webhooks")
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(body, "https://hooks.example.test/certmint") ||
		!strings.Contains(body, "certificate.issued,renewal.overdue") {
		t.Fatalf("add: %d\n%s", resp.StatusCode, body)
	}
	eps, err := f.store.ListWebhooks(t.Context())
	if err != nil || len(eps) != 1 {
		t.Fatalf("endpoints %v %v", eps, err)
	}
	seedCert(t, f.store, "hooked.fleet.test", time.Now().Add(60*24*time.Hour))
	_, page = f.get(c, "/webhooks")
	if !strings.Contains(page, `data-status="pending"`) || !strings.Contains(page, "certificate.issued") {
		t.Fatalf("deliveries not shown:\n%s", page)
	}
	if strings.Contains(page, secret) || strings.Contains(logs.String(), secret) {
		t.Fatal("the secret shows in a page or the log")
	}
	resp, _ = f.post(c, "/webhooks/"+eps[0].ID+"/remove", url.Values{"csrf_token": {csrfOf(t, page)}})
	if eps, _ := f.store.ListWebhooks(t.Context()); resp.StatusCode != http.StatusSeeOther || len(eps) != 0 {
		t.Fatalf("remove: %d, %d left", resp.StatusCode, len(eps))
	}
}
