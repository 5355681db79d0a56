package integration

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// rubyAcmeClient finds ruby with Debian's ruby-acme-client gem, installing
// the package when running as root. Without it the test skips, or fails
// under CI=true.
func rubyAcmeClient(t testing.TB) string {
	t.Helper()
	have := func() (string, bool) {
		p, err := exec.LookPath("ruby")
		return p, err == nil && exec.Command(p, "-e", `require "acme/client"`).Run() == nil
	}
	if p, ok := have(); ok {
		return p
	}
	if os.Geteuid() == 0 {
		install := exec.Command("sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ruby-acme-client")
		if out, err := install.CombinedOutput(); err != nil {
			t.Logf("installing ruby-acme-client failed: %v\n%s", err, out)
		}
		if p, ok := have(); ok {
			return p
		}
	}
	if isCI() {
		t.Fatal("ruby-acme-client is not installed and could not be installed (apt-get install ruby-acme-client)")
	}
	t.Skip("ruby-acme-client is not installed; run `apt-get install ruby-acme-client` (or make test as root) to run this test")
	return ""
}

// TestRubyAcmeClient: Debian's ruby-acme-client (2.0.9) completes an
// http-01 issuance. It reads the directory with a client that fails on a
// Replay-Nonce there (RFC 8555 §7.2 puts nonces on newNonce and POST
// answers only).
func TestRubyAcmeClient(t *testing.T) {
	ruby := rubyAcmeClient(t)
	s := StartServer(t, ServerOptions{})
	dir := t.TempDir()
	rootFile := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(rootFile, s.RootPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	webroot := filepath.Join(dir, "www")
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(s.HTTPPort))
	if err != nil {
		t.Fatal(err)
	}
	web := &http.Server{Handler: http.FileServer(http.Dir(webroot)), ReadHeaderTimeout: 5 * time.Second}
	go web.Serve(ln)
	t.Cleanup(func() { web.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, ruby, "testdata/ruby/issue.rb", s.DirectoryURL(), rootFile, webroot, "ruby.test")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("ruby acme-client: %v\n%s\nserver output:\n%s", err, stderr, s.Output())
	}
	t.Logf("ruby acme-client issuance in %s", time.Since(start).Round(time.Millisecond))
	leaf := parseLeaf(t, out)
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "ruby.test" {
		t.Fatalf("certificate for %v", leaf.DNSNames)
	}
}
