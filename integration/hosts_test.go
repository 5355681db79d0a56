package integration

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestValidationHostsCertbot: a server with no --dns-resolver and a
// --validation-hosts file mapping app.demo.test to 127.0.0.1 validates
// certbot --standalone on a high port, with no DNS server anywhere.
func TestValidationHostsCertbot(t *testing.T) {
	certbotPath(t)
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 app.demo.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := StartServer(t, ServerOptions{SystemResolver: true, Args: []string{"--validation-hosts", hosts}})
	dir := t.TempDir()
	runCertbot(t, s, dir, "certonly", "-d", "app.demo.test", "--standalone",
		"--http-01-port", strconv.Itoa(s.HTTPPort), "--http-01-address", "127.0.0.1")
	pem, err := os.ReadFile(filepath.Join(dir, "c", "live", "app.demo.test", "fullchain.pem"))
	if err != nil {
		t.Fatal(err)
	}
	checkCertificate(t, s, pem, []string{"app.demo.test"}, 90*24*time.Hour)
}

// TestValidationHostsBadFile: a malformed --validation-hosts stops
// start-up with exit status 2 and a line naming the flag and the line.
func TestValidationHostsBadFile(t *testing.T) {
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("app.demo.test 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "data")
	_, stderr, code := runCLI(t, nil, "serve", "--data", data, "--validation-hosts", hosts, "--listen", "127.0.0.1:0")
	if code != 2 || !strings.Contains(stderr, "--validation-hosts") || !strings.Contains(stderr, "line 1") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(data); err == nil {
		t.Fatal("a refused start created the data directory")
	}
}

// TestServerHostnameAddsToDefaults: --hostname ca.test gives a server
// certificate for ca.test, localhost and 127.0.0.1, on the ACME listener
// and on the console the README points browsers at.
func TestServerHostnameAddsToDefaults(t *testing.T) {
	s := StartServer(t, ServerOptions{Args: []string{"--hostname", "ca.test"}})
	for _, port := range []int{s.Port, s.AdminPort} {
		conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port), &tls.Config{RootCAs: s.Roots})
		if err != nil {
			t.Fatalf("port %d: the certificate does not verify for 127.0.0.1: %v", port, err)
		}
		leaf := conn.ConnectionState().PeerCertificates[0]
		conn.Close()
		for _, name := range []string{"ca.test", "localhost"} {
			if !slices.Contains(leaf.DNSNames, name) {
				t.Errorf("port %d: DNS names %v lack %s", port, leaf.DNSNames, name)
			}
		}
		if !slices.ContainsFunc(leaf.IPAddresses, func(ip net.IP) bool { return ip.Equal(net.IPv4(127, 0, 0, 1)) }) {
			t.Errorf("port %d: IP addresses %v lack 127.0.0.1", port, leaf.IPAddresses)
		}
		if err := leaf.VerifyHostname("ca.test"); err != nil {
			t.Errorf("port %d: %v", port, err)
		}
	}
}
