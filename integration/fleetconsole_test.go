package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestFleetConsoleBrowser walks the new console pages in Chromium: the
// nav entry and the dashboard's overdue tile lead to /inventory, which
// lists lego's certificate as a healthy lineage; /webhooks refuses a
// metadata URL next to the field and lists a good endpoint, not its
// secret.
func TestFleetConsoleBrowser(t *testing.T) {
	ctx := newBrowser(t)
	s := StartServer(t, ServerOptions{})
	const name = "inventory-demo.fleet.test"
	obtainWithLego(t, s, name)
	pw, err := os.ReadFile(filepath.Join(s.Data, "initial-admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, ctx: ctx, base: s.AdminURL(), shots: screenshotDir(t)}
	b.login("admin", strings.TrimSpace(string(pw)))
	if n := b.text("#count-overdue"); n != "0" {
		t.Fatalf("dashboard counts %s overdue renewals, want 0", n)
	}
	b.submit("#overdue-tile")
	if loc := b.location(); loc != b.base+"/inventory?state=overdue" {
		t.Fatalf("the overdue tile leads to %s", loc)
	}
	b.submit(`header nav a[href="/inventory"]`)
	if got := b.text("#inventory tbody"); !strings.Contains(got, name) || !strings.Contains(got, "healthy") {
		t.Fatalf("/inventory shows %q", got)
	}
	b.shot("inventory")

	b.open("/webhooks")
	b.do("fill a metadata URL",
		chromedp.SendKeys(`#webhook-add input[name=url]`, "http://169.254.169.254/latest"),
		chromedp.SendKeys(`#webhook-add input[name=secret]`, "browser-secret-0123456789"))
	b.submit(`#webhook-add button[type=submit]`)
	if msg := b.text("#webhook-error"); !strings.Contains(msg, "169.254.169.254") {
		t.Fatalf("no error next to the URL field: %q", msg)
	}
	b.do("fill a good endpoint",
		chromedp.SetValue(`#webhook-add input[name=url]`, "https://hooks.fleet.test/certmint"),
		chromedp.SendKeys(`#webhook-add input[name=secret]`, "browser-secret-0123456789"),
		chromedp.Click(`#webhook-add input[value="renewal.overdue"]`))
	b.submit(`#webhook-add button[type=submit]`)
	got := b.text("#webhook-endpoints tbody")
	if !strings.Contains(got, "https://hooks.fleet.test/certmint") || !strings.Contains(got, "renewal.overdue") || strings.Contains(got, "browser-secret") {
		t.Fatalf("/webhooks lists %q", got)
	}
	b.shot("webhooks")
}
