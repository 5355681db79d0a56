package integration

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// legoCLI builds the lego command (the version pinned in testdata/legocli).
func legoCLI(t *testing.T) string {
	t.Helper()
	return testdataTool(t, "legocli", "github.com/go-acme/lego/v4/cmd/lego")
}

// legoRun runs the lego command against s with its state in dir and
// returns its combined output and exit code.
func legoRun(t *testing.T, s *Server, dir string, args ...string) (string, int) {
	t.Helper()
	root := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(root, s.RootPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	// Build (or find) the lego command before the run's clock starts: the
	// first build can take minutes on a busy machine.
	lego := legoCLI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	all := append([]string{"--server", s.DirectoryURL(), "--accept-tos", "--email", "ops@example.test",
		"--path", dir, "--http", "--http.port", "127.0.0.1:" + itoa(s.HTTPPort)}, args...)
	cmd := exec.CommandContext(ctx, lego, all...)
	cmd.Env = append(os.Environ(), "LEGO_CA_CERTIFICATES="+root)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run lego %v: %v", args, err)
	}
	return out.String(), code
}

// legoSerial is the serial of the certificate lego keeps for name.
func legoSerial(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "certificates", name+".crt"))
	if err != nil {
		t.Fatal(err)
	}
	return parseLeaf(t, b).SerialNumber.Text(16)
}

// consolePost loads a confirmation page for its CSRF token and submits it
// as the browser would; it returns the status and the redirect target.
func consolePost(t *testing.T, s *Server, c *http.Client, path string, form url.Values) (int, string, string) {
	t.Helper()
	m := csrfField.FindStringSubmatch(mustBody(t, c, s.AdminURL()+path))
	if m == nil {
		t.Fatalf("no CSRF token on %s", path)
	}
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf_token", m[1])
	resp, err := c.PostForm(s.AdminURL()+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// signedInConsole signs in as the initial admin.
func signedInConsole(t *testing.T, s *Server) *http.Client {
	t.Helper()
	pw, err := os.ReadFile(filepath.Join(s.Data, "initial-admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	c := consoleClient(s)
	if code, body := formLogin(t, s, c, "admin", strings.TrimSpace(string(pw))); code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d\n%s", code, body)
	}
	return c
}

// TestARIRenewNow: the operator marks one of two certificates "renew now"
// in the console; `lego renew` without --days (lego's default threshold
// is 30 days, these certificates have 90) renews that one because its
// renewalInfo window is in the past (RFC 9773 §4.2), and leaves the other
// alone.
func TestARIRenewNow(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	dir := t.TempDir()
	names := []string{"marked.ari.test", "untouched.ari.test"}
	before := map[string]string{}
	for _, n := range names {
		out, code := legoRun(t, s, dir, "-d", n, "run")
		if code != 0 {
			t.Fatalf("lego run %s: exit %d\n%s\nserver:\n%s", n, code, out, s.Output())
		}
		before[n] = legoSerial(t, dir, n)
	}

	c := signedInConsole(t, s)
	id := findCertID(t, s, c, names[0])
	status, loc, body := consolePost(t, s, c, "/certificates/"+id+"/renew", nil)
	if status != http.StatusSeeOther || loc != "/certificates/"+id {
		t.Fatalf("console renew now: %d %q\n%s", status, loc, body)
	}
	if page := mustBody(t, c, s.AdminURL()+"/certificates/"+id); !strings.Contains(page, `id="renew-note"`) {
		t.Fatal("the certificate page does not say renewal was requested")
	}

	for _, n := range names {
		out, code := legoRun(t, s, dir, "-d", n, "renew", "--no-random-sleep")
		if code != 0 {
			t.Fatalf("lego renew %s: exit %d\n%s\nserver:\n%s", n, code, out, s.Output())
		}
		after := legoSerial(t, dir, n)
		switch n {
		case names[0]:
			if after == before[n] {
				t.Errorf("%s was marked renew-now but lego did not renew it:\n%s", n, out)
			}
			if !strings.Contains(out, "renewalInfo endpoint indicates that renewal is needed") {
				t.Errorf("lego did not renew because of renewalInfo:\n%s", out)
			}
		default:
			if after != before[n] {
				t.Errorf("%s was not marked but lego renewed it:\n%s", n, out)
			}
			if !strings.Contains(out, "renewal is not needed") || !strings.Contains(out, "no renewal") {
				t.Errorf("lego output does not say the certificate needs no renewal:\n%s", out)
			}
		}
	}

	// The new certificate replaced the marked one (lego sent "replaces",
	// RFC 9773 §5) and is not itself marked: a second renew is a no-op.
	if page := mustBody(t, c, s.AdminURL()+"/certificates/"+id); !strings.Contains(page, "replaces this certificate") {
		t.Error("the marked certificate's page does not name the order that replaced it")
	}
	renewed := legoSerial(t, dir, names[0])
	out, code := legoRun(t, s, dir, "-d", names[0], "renew", "--no-random-sleep")
	if code != 0 || legoSerial(t, dir, names[0]) != renewed {
		t.Errorf("second renew of %s: exit %d, serial changed %v\n%s", names[0], code, legoSerial(t, dir, names[0]) != renewed, out)
	}
}
