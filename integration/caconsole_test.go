package integration

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/certificate"
)

var pendingCSRLink = regexp.MustCompile(`href="/ca/([0-9a-f]+)/csr"`)

// offlineRootCA makes a data directory under an openssl root whose key
// certmint never sees: `ca init --offline-root` (with extra flags), the
// CSR signed by openssl for days, `ca import-intermediate`. It returns
// the temp dir (int.pem is the intermediate), the data dir and the root.
func offlineRootCA(t *testing.T, days string, extra ...string) (dir, data, root, rootKey string) {
	t.Helper()
	needOpenSSL(t)
	dir = t.TempDir()
	root, rootKey = opensslRoot(t, dir, "corp-root", "CA:TRUE")
	data = filepath.Join(dir, "data")
	csr := filepath.Join(dir, "int.csr")
	args := append([]string{"ca", "init", "--data", data, "--offline-root", root, "--csr-out", csr}, extra...)
	if _, stderr, code := runCLI(t, nil, args...); code != 0 {
		t.Fatalf("ca init: exit %d: %s", code, stderr)
	}
	opensslIn(t, dir, "x509", "-req", "-in", csr, "-CA", root, "-CAkey", rootKey, "-days", days, "-copy_extensions", "copyall", "-out", "int.pem")
	if _, stderr, code := runCLI(t, nil, "ca", "import-intermediate", "--data", data, filepath.Join(dir, "int.pem")); code != 0 {
		t.Fatalf("import-intermediate: exit %d: %s", code, stderr)
	}
	return dir, data, root, rootKey
}

// TestCAConsoleOfflineRotation: a CA under an openssl root whose key
// certmint never sees. The console's CA page shows the issuers, the
// offline-root banner (the intermediate has less than 90 days plus the
// longest profile left), and which account fetched the bundle. From the
// page the operator rotates the intermediate, downloads its CSR, has the
// root sign it (openssl), pastes a wrong certificate (refused next to the
// field) and then the right one: new certificates come from the new
// intermediate and openssl verifies them to the root. Every action is in
// the audit log.
func TestCAConsoleOfflineRotation(t *testing.T) {
	dir, data, root, rootKey := offlineRootCA(t, "150", "--permitted-dns", "svc.test")
	s := StartServer(t, ServerOptions{Data: data, Hostnames: "acme.svc.test", TLSName: "acme.svc.test", Args: []string{"--ca-poll", "300ms"}})
	client, res := obtainWithLegoClient(t, s, "a.svc.test")
	oldInter := chainIssuer(t, res.Certificate)

	// An agent names its account when it fetches the bundle.
	acct, err := client.Registration.QueryRegistration()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, s.DirectoryURL()[:strings.Index(s.DirectoryURL(), "/acme/")]+"/roots/bundle.pem", nil)
	req.Header.Set("Certmint-Account", acct.URI)
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	acctID := acct.URI[strings.LastIndex(acct.URI, "/")+1:]

	c := signedInConsole(t, s)
	page := mustBody(t, c, s.AdminURL()+"/ca")
	for _, want := range []string{`data-role="root" data-state="active"`, `data-role="intermediate" data-state="active"`,
		"permitted DNS svc.test", "offline", `id="ca-banner"`, "/crl/intermediate.crl", `href="/accounts/` + acctID + `"`} {
		if !strings.Contains(page, want) {
			t.Fatalf("/ca lacks %q:\n%s", want, page)
		}
	}

	status, loc, body := consolePost(t, s, c, "/ca/rotate/intermediate", nil)
	if status != http.StatusSeeOther || loc != "/ca?done=csr" {
		t.Fatalf("rotate from the console: %d %q\n%s", status, loc, body)
	}
	page = mustBody(t, c, s.AdminURL()+"/ca")
	m := pendingCSRLink.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, `data-state="pending"`) {
		t.Fatalf("/ca shows no pending CSR after the rotation:\n%s", page)
	}
	csrResp, err := c.Get(s.AdminURL() + "/ca/" + m[1] + "/csr")
	if err != nil {
		t.Fatal(err)
	}
	csrPEM, _ := io.ReadAll(csrResp.Body)
	csrResp.Body.Close()
	if csrResp.StatusCode != http.StatusOK || !strings.Contains(string(csrPEM), "CERTIFICATE REQUEST") {
		t.Fatalf("CSR download: %d %s", csrResp.StatusCode, csrPEM)
	}
	next := filepath.Join(dir, "next.csr")
	if err := os.WriteFile(next, csrPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	opensslIn(t, dir, "x509", "-req", "-in", next, "-CA", root, "-CAkey", rootKey, "-days", "1825", "-copy_extensions", "copyall", "-out", "next.pem")

	// The old intermediate is the wrong certificate for this CSR.
	oldPEM, _ := os.ReadFile(filepath.Join(dir, "int.pem"))
	status, _, body = consolePost(t, s, c, "/ca/import", url.Values{"certificate": {string(oldPEM)}})
	if status != http.StatusBadRequest || !strings.Contains(body, `id="ca-import-error"`) || !strings.Contains(body, "different key") {
		t.Fatalf("a wrong certificate pasted: %d\n%s", status, body)
	}
	newPEM, _ := os.ReadFile(filepath.Join(dir, "next.pem"))
	status, loc, body = consolePost(t, s, c, "/ca/import", url.Values{"certificate": {string(newPEM)}})
	if status != http.StatusSeeOther || loc != "/ca?done=import" {
		t.Fatalf("import from the console: %d %q\n%s", status, loc, body)
	}
	var resB *certificate.Resource
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, resB = obtainWithLegoClient(t, s, "b.svc.test")
		if !chainIssuer(t, resB.Certificate).Equal(oldInter) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still the old intermediate after the import\n%s", s.Output())
		}
		time.Sleep(300 * time.Millisecond)
	}
	opensslVerify(t, root, resB.Certificate)
	opensslVerify(t, root, res.Certificate) // A keeps verifying with its own chain
	verifyChain(t, resB.Certificate, s.Roots, time.Now())

	// The new intermediate has five years: the banner is gone.
	deadline = time.Now().Add(5 * time.Second)
	for strings.Contains(mustBody(t, c, s.AdminURL()+"/ca"), `id="ca-banner"`) {
		if time.Now().After(deadline) {
			t.Fatal("the offline-root banner stays after the new intermediate was imported")
		}
		time.Sleep(200 * time.Millisecond)
	}
	auditPage := mustBody(t, c, s.AdminURL()+"/audit?q=ca.")
	for _, a := range []string{"ca.rotate_intermediate", "ca.csr_download", "ca.import_intermediate"} {
		if !strings.Contains(auditPage, a) {
			t.Errorf("/audit lacks %s", a)
		}
	}
}

// TestCARotateCLI: the command line's side of an offline-root rotation
// and its refusals, each one line and exit 2 with nothing recorded:
// `ca rotate intermediate` without --csr-out for an offline root, a
// second rotation while one is pending, a certificate for another key;
// then `ca import-intermediate` activates the signed one and the running
// server issues from it.
func TestCARotateCLI(t *testing.T) {
	dir, data, root, rootKey := offlineRootCA(t, "400")
	_, stderr, code := runCLI(t, nil, "ca", "rotate", "intermediate", "--data", data)
	wantUsage(t, stderr, code, "no database at") // nothing recorded before the first serve
	s := StartServer(t, ServerOptions{Data: data, Args: []string{"--ca-poll", "300ms"}})
	_, resA := obtainWithLegoClient(t, s, "a.cli.test")

	_, stderr, code = runCLI(t, nil, "ca", "rotate", "intermediate", "--data", data)
	wantUsage(t, stderr, code, "the root key is offline: give --csr-out FILE")
	_, stderr, code = runCLI(t, nil, "ca", "rotate", "root", "--data", data, "--overlap", "-1h")
	wantUsage(t, stderr, code, "must not be negative")
	next := filepath.Join(dir, "next.csr")
	if out, stderr, code := runCLI(t, nil, "ca", "rotate", "intermediate", "--data", data, "--csr-out", next); code != 0 || !strings.Contains(out, "pending") {
		t.Fatalf("ca rotate intermediate --csr-out: exit %d: %s%s", code, out, stderr)
	}
	_, stderr, code = runCLI(t, nil, "ca", "rotate", "intermediate", "--data", data, "--csr-out", filepath.Join(dir, "again.csr"))
	wantUsage(t, stderr, code, "already pending")
	if _, err := os.Stat(filepath.Join(dir, "again.csr")); err == nil {
		t.Fatal("a refused rotation wrote its CSR")
	}
	_, stderr, code = runCLI(t, nil, "ca", "import-intermediate", "--data", data, filepath.Join(dir, "int.pem"))
	wantUsage(t, stderr, code, "different key than the pending CSR")
	st := caStatus(t, "--data", data)
	if n := countRoles(st); n["intermediate/pending"] != 1 || n["intermediate/active"] != 1 {
		t.Fatalf("status while pending: %+v", st)
	}

	opensslIn(t, dir, "x509", "-req", "-in", next, "-CA", root, "-CAkey", rootKey, "-days", "400", "-copy_extensions", "copyall", "-out", "next.pem")
	if out, stderr, code := runCLI(t, nil, "ca", "import-intermediate", "--data", data, filepath.Join(dir, "next.pem")); code != 0 {
		t.Fatalf("import-intermediate of the rotation: exit %d: %s%s", code, out, stderr)
	}
	st = caStatus(t, "--data", data)
	if n := countRoles(st); n["intermediate/retiring"] != 1 || n["intermediate/active"] != 1 {
		t.Fatalf("status after the import: %+v", st)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, res := obtainWithLegoClient(t, s, "b.cli.test")
		if !chainIssuer(t, res.Certificate).Equal(chainIssuer(t, resA.Certificate)) {
			opensslVerify(t, root, res.Certificate)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not take the imported intermediate\n%s", s.Output())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func countRoles(st []issuerStatus) map[string]int {
	n := map[string]int{}
	for _, s := range st {
		n[s.Role+"/"+s.State]++
	}
	return n
}

// TestCAConsoleBrowser drives the CA page in headless Chromium: the CA
// link in the navigation, the issuers table, a root rotation with its
// confirmation page and overlap field, then the early switch. Screenshots
// go to the console screenshot folder.
func TestCAConsoleBrowser(t *testing.T) {
	ctx := newBrowser(t)
	s := StartServer(t, ServerOptions{Args: []string{"--ca-poll", "300ms"}})
	pw, err := os.ReadFile(filepath.Join(s.Data, "initial-admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, ctx: ctx, base: s.AdminURL(), shots: screenshotDir(t)}
	b.login("admin", strings.TrimSpace(string(pw)))
	b.submit(`nav a[href="/ca"]`)
	if got := b.text(`#ca-issuers tbody`); !strings.Contains(got, "root") || !strings.Contains(got, "intermediate") || !strings.Contains(got, "database") {
		t.Fatalf("CA page issuers: %q", got)
	}
	b.shot("ca")
	b.submit(`#ca-rotate-root`)
	b.shot("ca-rotate-root-confirm")
	b.submit(`#ca-confirm`)
	if got := b.text(`#ca-notice`); !strings.Contains(got, "new root is in the bundle") {
		t.Fatalf("after a root rotation: %q", got)
	}
	if got := b.text(`#ca-bundle ul`); strings.Count(got, "SHA-256") != 2 {
		t.Fatalf("the bundle during the overlap: %q", got)
	}
	b.shot("ca-overlap")
	b.submit(`#ca-switch`)
	b.submit(`#ca-confirm`)
	if got := b.text(`#ca-notice`); !strings.Contains(got, "switched") {
		t.Fatalf("after the early switch: %q", got)
	}
	if got := b.text(`#ca-bundle ul`); strings.Count(got, "SHA-256") != 1 {
		t.Fatalf("the bundle after the switch: %q", got)
	}
	b.shot("ca-switched")
	if n := len(fetchBundle(t, s)); n != 1 {
		t.Fatalf("/roots/bundle.pem holds %d roots after the switch", n)
	}
	b.open("/audit?q=ca.")
	if got := b.text(`main`); !strings.Contains(got, "ca.rotate_root") || !strings.Contains(got, "ca.switch") {
		t.Fatalf("audit after the rotation: %q", got)
	}
}
