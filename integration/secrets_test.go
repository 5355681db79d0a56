package integration

import (
	"io"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSecretsStaySecret runs a server with an encrypted CA, creates an EAB
// key, signs in to the console (once with a wrong password), and then
// looks for every secret in the server's output and in the console's
// pages: the CA passphrase, the EAB MAC key, the admin password, the wrong
// password and the session token must appear nowhere.
func TestSecretsStaySecret(t *testing.T) {
	const passphrase = "correct-horse-battery-staple-42"
	s := StartServer(t, ServerOptions{Env: []string{"CERTMINT_CA_PASSPHRASE=" + passphrase}, Args: []string{"--log-level", "debug"}})
	// The first start prints the admin password once, by design; what
	// comes after must not repeat it.
	afterStart := len(s.Output())
	_, hmac := eabCreate(t, s, "--label", "secret-test")
	password, err := os.ReadFile(filepath.Join(s.Data, "initial-admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	adminPW := strings.TrimSpace(string(password))

	jar, _ := cookiejar.New(nil)
	client := s.HTTPClient()
	client.Jar = jar
	const wrong = "wrong-password-Zq81"
	login := func(pw string) {
		resp, err := client.Get(s.AdminURL() + "/login")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindSubmatch(body)
		if m == nil {
			t.Fatalf("no CSRF token on the sign-in page")
		}
		resp, err = client.PostForm(s.AdminURL()+"/login", url.Values{"csrf_token": {string(m[1])}, "username": {"admin"}, "password": {pw}, "next": {"/"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	login(wrong)
	login(adminPW)
	adminURL, _ := url.Parse(s.AdminURL())
	var session string
	for _, c := range jar.Cookies(adminURL) {
		if strings.Contains(c.Name, "session") {
			session = c.Value
		}
	}
	if session == "" {
		t.Fatal("sign-in with the initial password gave no session")
	}
	// A good look around the console: every page a person would open.
	var pages strings.Builder
	for _, p := range []string{"/", "/settings", "/audit", "/accounts", "/certificates", "/orders", "/eab"} {
		resp, err := client.Get(s.AdminURL() + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		pages.Write(b)
	}
	s.Stop()
	keyFiles := ""
	for _, f := range []string{"root.key", "intermediate.key"} {
		b, err := os.ReadFile(filepath.Join(s.Data, "ca", f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "ENCRYPTED") {
			t.Fatalf("%s is not encrypted at rest", f)
		}
		keyFiles += string(b)
	}
	for what, secret := range map[string]string{"CA passphrase": passphrase, "EAB MAC key": hmac,
		"admin password": adminPW, "wrong password": wrong, "session token": session} {
		if strings.Contains(s.Output()[afterStart:], secret) || (what != "admin password" && strings.Contains(s.Output(), secret)) {
			t.Errorf("the %s appears in the server's output", what)
		}
		if strings.Contains(pages.String(), secret) {
			t.Errorf("the %s appears on a console page", what)
		}
	}
	if t.Failed() {
		return
	}
	// And a key file that others may read stops start-up, in one line.
	os.Chmod(filepath.Join(s.Data, "ca", "intermediate.key"), 0o644)
	_, stderr, code := runCLI(t, []string{"CERTMINT_CA_PASSPHRASE=" + passphrase}, s.Args()...)
	if code != 2 || !strings.Contains(stderr, "chmod 600") || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
		t.Fatalf("group-readable key: exit %d, stderr %q; want exit 2 and one line naming chmod 600", code, stderr)
	}
}
