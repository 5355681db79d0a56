package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// certbotPath finds Debian's certbot, installing it when running as root.
// Without it the test skips, or fails under CI=true.
func certbotPath(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("certbot"); err == nil {
		return p
	}
	if os.Geteuid() == 0 {
		install := exec.Command("sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq certbot")
		if out, err := install.CombinedOutput(); err != nil {
			t.Logf("installing certbot failed: %v\n%s", err, out)
		}
		if p, err := exec.LookPath("certbot"); err == nil {
			return p
		}
	}
	if isCI() {
		t.Fatal("certbot is not installed and could not be installed (apt-get install certbot)")
	}
	t.Skip("certbot is not installed; run `apt-get install certbot` (or make test as root) to run this test")
	return ""
}

// runCertbot runs certbot with the server's root trusted, in its own
// config/work/log directories.
func runCertbot(t testing.TB, s *Server, dir string, args ...string) string {
	t.Helper()
	rootFile := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(rootFile, s.RootPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"--server", s.DirectoryURL(), "--non-interactive", "--agree-tos",
		"--register-unsafely-without-email",
		"--config-dir", filepath.Join(dir, "c"), "--work-dir", filepath.Join(dir, "w"), "--logs-dir", filepath.Join(dir, "l")}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, certbotPath(t), append(args, base...)...)
	cmd.Env = append(os.Environ(), "REQUESTS_CA_BUNDLE="+rootFile)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("certbot %v: %v\n%s\nserver:\n%s", args, err, out, s.Output())
	}
	return string(out)
}

// TestCertbot runs Debian's certbot: certonly --standalone, then a forced
// renewal, and checks both certificates.
func TestCertbot(t *testing.T) {
	certbotPath(t)
	s := StartServer(t, ServerOptions{})
	dir := t.TempDir()
	standalone := []string{"--standalone", "--http-01-port", strconv.Itoa(s.HTTPPort), "--http-01-address", "127.0.0.1"}
	runCertbot(t, s, dir, append([]string{"certonly", "-d", "certbot.test", "-d", "www.certbot.test"}, standalone...)...)
	live := filepath.Join(dir, "c", "live", "certbot.test")
	first, err := os.ReadFile(filepath.Join(live, "fullchain.pem"))
	if err != nil {
		t.Fatal(err)
	}
	leaf1 := checkCertificate(t, s, first, []string{"certbot.test", "www.certbot.test"}, 90*24*time.Hour)

	runCertbot(t, s, dir, append([]string{"renew", "--force-renewal", "--no-random-sleep-on-renew"}, standalone...)...)
	second, err := os.ReadFile(filepath.Join(live, "fullchain.pem"))
	if err != nil {
		t.Fatal(err)
	}
	leaf2 := checkCertificate(t, s, second, []string{"certbot.test", "www.certbot.test"}, 90*24*time.Hour)
	if leaf1.SerialNumber.Cmp(leaf2.SerialNumber) == 0 {
		t.Fatal("renewal returned the same certificate")
	}
}
