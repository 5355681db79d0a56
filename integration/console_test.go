package integration

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/lego"
)

// chromiumPath is Debian's chromium.
const chromiumPath = "/usr/bin/chromium"

// needChromium installs Chromium when running as root, and otherwise
// skips (or fails under CI=true) with a clear message.
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err == nil {
		return
	}
	if os.Geteuid() == 0 {
		cmd := exec.Command("apt-get", "install", "-y", "chromium")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("apt-get install chromium: %v\n%s", err, out)
		}
		if _, err := os.Stat(chromiumPath); err == nil {
			return
		}
	}
	msg := "console browser tests need Chromium at " + chromiumPath + "; install it with `apt-get install chromium` (as root)"
	if isCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// newBrowser starts headless Chromium with a fresh profile and returns a
// tab context. The console's certificate comes from the test's private
// root, which this throwaway profile does not trust, hence
// ignore-certificate-errors.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	needChromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[int](`1`)); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// browser wraps a tab with the steps the console tests repeat.
type browser struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string
	n     int
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func (b *browser) open(path string) { b.t.Helper(); b.do("open "+path, chromedp.Navigate(b.base+path)) }

// submit clicks sel and waits for the page it loads.
func (b *browser) submit(sel string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(sel)); err != nil {
		b.t.Fatalf("click %s: %v", sel, err)
	}
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func (b *browser) location() string {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return loc
}

// shot saves a full-page PNG of the current page.
func (b *browser) shot(name string) {
	b.t.Helper()
	buf, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	b.n++
	p := filepath.Join(b.shots, fmtN(b.n)+"-"+name+".png")
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func fmtN(n int) string { return string([]byte{byte('0' + n/10), byte('0' + n%10)}) }

func (b *browser) login(user, password string) {
	b.t.Helper()
	b.open("/login")
	b.do("fill the sign-in form",
		chromedp.SendKeys(`input[name=username]`, user),
		chromedp.SendKeys(`input[name=password]`, password))
	b.submit(`button[type=submit]`)
}

// obtainWithLegoClient is obtainWithLego that also returns the client, so
// the test can act as the certificate's account afterwards.
func obtainWithLegoClient(t *testing.T, s *Server, names ...string) (*lego.Client, *certificate.Resource) {
	t.Helper()
	client, _ := newLegoClient(t, s, "ec")
	res, err := client.Certificate.Obtain(certificate.ObtainRequest{Domains: names, Bundle: true})
	if err != nil {
		t.Fatalf("lego obtain %v: %v\nserver output:\n%s", names, err, s.Output())
	}
	return client, res
}

// screenshotDir is a fixed folder so that a person can look at the pages
// after the run; CERTMINT_SCREENSHOTS overrides it.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("CERTMINT_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "certmint-console-screenshots")
	}
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestConsoleBrowser walks the console in headless Chromium: sign in,
// find a certificate lego obtained, revoke it, see it in the audit log,
// and check that ACME agrees it is revoked.
func TestConsoleBrowser(t *testing.T) {
	ctx := newBrowser(t)
	s := StartServer(t, ServerOptions{})
	const name = "console-demo.test"
	client, res := obtainWithLegoClient(t, s, name)
	leaf := parseLeaf(t, res.Certificate)
	serial := strings.ToLower(leaf.SerialNumber.Text(16))

	pw, err := os.ReadFile(filepath.Join(s.Data, "initial-admin-password"))
	if err != nil {
		t.Fatalf("initial admin password: %v", err)
	}
	if fi, _ := os.Stat(filepath.Join(s.Data, "initial-admin-password")); fi.Mode().Perm() != 0o600 {
		t.Errorf("initial-admin-password has mode %v, want 0600", fi.Mode().Perm())
	}
	b := &browser{t: t, ctx: ctx, base: s.AdminURL(), shots: screenshotDir(t)}
	t.Logf("console screenshots: %s", b.shots)

	// Without a session the browser lands on the sign-in page.
	b.open("/certificates")
	if loc := b.location(); !strings.HasPrefix(loc, b.base+"/login") {
		t.Fatalf("without a session /certificates shows %s, want /login", loc)
	}
	b.shot("login")

	b.login("admin", strings.TrimSpace(string(pw)))
	if loc := b.location(); loc != b.base+"/" {
		t.Fatalf("after sign-in at %s, want the dashboard", loc)
	}
	if n := b.text("#count-valid"); n != "1" {
		t.Fatalf("dashboard counts %s valid certificates, want 1", n)
	}
	if fp := b.text("#root-fingerprint"); fp == "" {
		t.Fatal("no root fingerprint on the dashboard")
	}
	b.shot("dashboard")

	// Find it by name.
	b.open("/certificates?q=console-demo")
	if got := b.text("table.list tbody"); !strings.Contains(got, name) {
		t.Fatalf("search by name shows %q", got)
	}
	b.shot("certificates-search")
	b.submit(`table.list tbody a[href^="/certificates/"]`)
	if st := b.text("#cert-state"); st != "valid" {
		t.Fatalf("certificate state %q, want valid", st)
	}
	certURL := b.location()
	b.shot("certificate")

	// Revoke with a reason, through the confirmation page.
	b.submit(`a.button.danger`)
	b.do("choose keyCompromise", chromedp.Click(`input[name=reason][value="1"]`))
	b.shot("revoke-confirm")
	b.submit(`#confirm-revoke`)
	if loc := b.location(); loc != certURL {
		t.Fatalf("after revoking at %s, want %s", loc, certURL)
	}
	if st := b.text("#cert-state"); st != "revoked" {
		t.Fatalf("certificate state %q after revoking, want revoked", st)
	}
	if note := b.text("#revoked-note"); !strings.Contains(note, "keyCompromise") {
		t.Fatalf("revocation note %q lacks the reason", note)
	}
	b.shot("certificate-revoked")

	b.open("/audit")
	audit := b.text("table.list tbody")
	for _, want := range []string{"certificate.revoke", serial, "keyCompromise", "login", "admin", "127.0.0.1"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit log lacks %q:\n%s", want, audit)
		}
	}
	b.shot("audit")

	// The remaining pages, for the screenshots and a smoke check each.
	for _, p := range []struct{ path, shot, want string }{
		{"/accounts", "accounts", "valid"},
		{"/orders", "orders", name},
		{"/orders?status=invalid", "orders-empty", "No orders match"},
		{"/certificates", "certificates", name},
		{"/settings", "settings", "admin-listen"},
		{"/", "dashboard-after", "Revoked"},
	} {
		b.open(p.path)
		if got := b.text("main"); !strings.Contains(got, p.want) {
			t.Errorf("%s lacks %q", p.path, p.want)
		}
		b.shot(p.shot)
	}
	b.open("/orders")
	b.submit(`table.list tbody a[href^="/orders/"]`)
	b.shot("order")
	b.open("/accounts")
	b.submit(`table.list tbody a[href^="/accounts/"]`)
	b.shot("account")

	// ACME agrees: revoking again is alreadyRevoked (RFC 8555 §7.6).
	reason := uint(1)
	err = client.Certificate.RevokeWithReason(res.Certificate, &reason)
	if err == nil || !strings.Contains(err.Error(), "alreadyRevoked") {
		t.Fatalf("ACME revocation after the console's: %v, want alreadyRevoked", err)
	}

	// Signing out ends the session.
	b.submit(`form.who button`)
	b.open("/")
	if loc := b.location(); !strings.HasPrefix(loc, b.base+"/login") {
		t.Fatalf("after sign-out / shows %s", loc)
	}
}

// TestConsoleSecurity checks, against the real binary, that pages need a
// session, that forms need their CSRF token, and that repeated wrong
// passwords slow down and then lock sign-in.
func TestConsoleSecurity(t *testing.T) {
	ctx := newBrowser(t)
	s := StartServer(t, ServerOptions{})
	_, res := obtainWithLegoClient(t, s, "csrf-target.test")
	leaf := parseLeaf(t, res.Certificate)

	anon := consoleClient(s)
	for _, p := range []string{"/", "/accounts", "/orders", "/certificates", "/certificates?q=x", "/audit",
		"/settings", "/root.pem", "/debug/pprof/", "/accounts/x", "/orders/x", "/certificates/x", "/certificates/x/revoke"} {
		resp := mustGet(t, anon, s.AdminURL()+p)
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
			t.Errorf("GET %s without a session: %d to %q, want a redirect to /login", p, resp.StatusCode, loc)
		}
	}

	// A signed-in session still needs the form's token.
	pw, _ := os.ReadFile(filepath.Join(s.Data, "initial-admin-password"))
	c := consoleClient(s)
	if code, _ := formLogin(t, s, c, "admin", strings.TrimSpace(string(pw))); code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", code)
	}
	if r := mustGet(t, c, s.AdminURL()+"/debug/pprof/"); r.StatusCode != http.StatusOK {
		t.Errorf("pprof with a session: %d", r.StatusCode)
	}
	certID := findCertID(t, s, c, "csrf-target.test")
	resp, err := c.PostForm(s.AdminURL()+"/certificates/"+certID+"/revoke", url.Values{"reason": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "CSRF") {
		t.Fatalf("revoke without the CSRF token: %d, want 403 with a clear message", resp.StatusCode)
	}
	if got := mustGet(t, c, s.AdminURL()+"/certificates/"+certID); got.StatusCode != 200 {
		t.Fatal("certificate page")
	}
	if page := mustBody(t, c, s.AdminURL()+"/certificates/"+certID); strings.Contains(page, `id="cert-state">revoked`) {
		t.Fatalf("certificate %s revoked by a form without token", leaf.SerialNumber)
	}

	// Six wrong passwords for a user made offline with the CLI.
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("ops-password-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := runCLI(t, nil, "admin", "user", "add", "ops", "--data", s.Data, "--password-file", pwFile); code != 0 {
		t.Fatalf("admin user add: %d %s %s", code, out, errOut)
	}
	b := &browser{t: t, ctx: ctx, base: s.AdminURL(), shots: filepath.Join(os.TempDir(), "certmint-console-screenshots")}
	_ = os.MkdirAll(b.shots, 0o755)
	b.n = 50
	var took []time.Duration
	for i := 1; i <= 6; i++ {
		start := time.Now()
		b.login("ops", "wrong-password-"+string(rune('0'+i)))
		took = append(took, time.Since(start))
		msg := b.text(".alert")
		if i <= 4 && !strings.Contains(msg, "Wrong user name or password") {
			t.Fatalf("attempt %d: %q", i, msg)
		}
		if i >= 5 && !strings.Contains(msg, "locked") {
			t.Fatalf("attempt %d: %q, want a lock message", i, msg)
		}
	}
	t.Logf("wrong sign-ins took %v", took)
	if took[3] < took[0]+500*time.Millisecond {
		t.Errorf("failed sign-ins are not slowed down: %v", took)
	}
	b.shot("login-locked")
	// While locked, even the right password is refused.
	b.login("ops", "ops-password-1")
	if msg := b.text(".alert"); !strings.Contains(msg, "locked") {
		t.Fatalf("right password while locked: %q", msg)
	}
	// ... and the CLI lifts the lock by setting a new password.
	if _, errOut, code := runCLI(t, nil, "admin", "user", "passwd", "ops", "--data", s.Data, "--password-file", pwFile); code != 0 {
		t.Fatalf("admin user passwd: %d %s", code, errOut)
	}
	b.login("ops", "ops-password-1")
	if loc := b.location(); loc != b.base+"/" {
		t.Fatalf("after passwd, sign-in lands on %s", loc)
	}
	if out, _, code := runCLI(t, nil, "admin", "user", "list", "--data", s.Data); code != 0 || !strings.Contains(out, "ops") || !strings.Contains(out, "admin") {
		t.Fatalf("admin user list: %d %q", code, out)
	}
	if _, errOut, code := runCLI(t, nil, "admin", "user", "add", "--data", s.Data); code != 2 || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("bad usage: exit %d, stderr %q", code, errOut)
	}
}

func consoleClient(s *Server) *http.Client {
	jar, _ := cookiejar.New(nil)
	c := s.HTTPClient()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

func mustGet(t *testing.T, c *http.Client, u string) *http.Response {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func mustBody(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// formLogin signs in the way the sign-in form does.
func formLogin(t *testing.T, s *Server, c *http.Client, user, pw string) (int, string) {
	t.Helper()
	m := csrfField.FindStringSubmatch(mustBody(t, c, s.AdminURL()+"/login"))
	if m == nil {
		t.Fatal("no CSRF token in the sign-in form")
	}
	resp, err := c.PostForm(s.AdminURL()+"/login", url.Values{"username": {user}, "password": {pw}, "csrf_token": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var certLink = regexp.MustCompile(`href="/certificates/([0-9a-v]{26})"`)

func findCertID(t *testing.T, s *Server, c *http.Client, name string) string {
	t.Helper()
	m := certLink.FindStringSubmatch(mustBody(t, c, s.AdminURL()+"/certificates?q="+url.QueryEscape(name)))
	if m == nil {
		t.Fatal(errors.New("certificate not listed by name"))
	}
	return m[1]
}
