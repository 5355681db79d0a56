package validate

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func writeHosts(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDefaultResolverReadsHostsFile: without --dns-resolver, a name the
// system hosts file lists is resolved from it, as the host itself would,
// and an http-01 validation for it succeeds without any DNS server.
func TestDefaultResolverReadsHostsFile(t *testing.T) {
	cs := newChallengeServer(t, "tcp", "127.0.0.1:0")
	sys := writeHosts(t, "# a comment\n127.0.0.1\tlocalhost app.hosts.test  # trailing\n::1 localhost six.hosts.test\nnot-an-ip bad.hosts.test\n")
	port, _ := strconv.Atoi(cs.port)
	v := New(Config{HTTPPort: port})
	v.dns = newResolver("", time.Second, "", sys)

	v4, v6, err := v.dns.lookupIP(context.Background(), "APP.hosts.test.")
	if err != nil || len(v4) != 1 || v4[0] != netip.MustParseAddr("127.0.0.1") || len(v6) != 0 {
		t.Fatalf("app.hosts.test: %v %v %v", v4, v6, err)
	}
	if _, v6, err := v.dns.lookupIP(context.Background(), "six.hosts.test"); err != nil || len(v6) != 1 {
		t.Fatalf("six.hosts.test: %v %v", v6, err)
	}
	err = v.Validate(context.Background(), Request{Type: TypeHTTP01, IdentType: IdentDNS,
		Value: "app.hosts.test", Token: "good", KeyAuth: keyAuth("good")})
	if err != nil {
		t.Fatalf("http-01 for a name in the hosts file: %v", err)
	}
	// An edit is seen without a restart.
	time.Sleep(10 * time.Millisecond)
	if err := os.WriteFile(sys, []byte("127.0.0.2 app.hosts.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if v4, _, _ := v.dns.lookupIP(context.Background(), "app.hosts.test"); len(v4) != 1 || v4[0] != netip.MustParseAddr("127.0.0.2") {
		t.Fatalf("after the edit: %v", v4)
	}
}

// TestValidationHosts: --validation-hosts wins over DNS and over the
// system file; with --dns-resolver the system file is not consulted.
func TestValidationHosts(t *testing.T) {
	dnsSrv := newTestDNS(t, true, "app.demo.test. A 192.0.2.1", "dnsonly.test. A 192.0.2.2")
	sys := writeHosts(t, "127.0.0.9 sysonly.test app.demo.test\n")
	extra := writeHosts(t, "127.0.0.1 app.demo.test\n")
	ctx := context.Background()

	r := newResolver(dnsSrv.Addr, time.Second, extra, sys)
	if v4, _, err := r.lookupIP(ctx, "app.demo.test"); err != nil || v4[0] != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("validation hosts should win over DNS: %v %v", v4, err)
	}
	if v4, _, err := r.lookupIP(ctx, "dnsonly.test"); err != nil || v4[0] != netip.MustParseAddr("192.0.2.2") {
		t.Errorf("unlisted name should go to DNS: %v %v", v4, err)
	}
	if _, _, err := r.lookupIP(ctx, "sysonly.test"); err == nil || !strings.Contains(err.Error(), "NXDOMAIN") {
		t.Errorf("with a DNS resolver the system hosts file must not be read, got %v", err)
	}

	r = newResolver("", time.Second, extra, sys)
	if v4, _, err := r.lookupIP(ctx, "app.demo.test"); err != nil || v4[0] != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("validation hosts should win over the system file: %v %v", v4, err)
	}
	if v4, _, err := r.lookupIP(ctx, "sysonly.test"); err != nil || v4[0] != netip.MustParseAddr("127.0.0.9") {
		t.Errorf("system file: %v %v", v4, err)
	}
}

func TestCheckHostsFile(t *testing.T) {
	for name, tc := range map[string]struct {
		content string
		want    string // "" = ok
	}{
		"ok/plain":         {"127.0.0.1 a.test b.test\n# c\n\n::1 c.test\n", ""},
		"fail/bad-address": {"127.0.0.1 a.test\n300.1.1.1 b.test\n", "line 2"},
		"fail/no-name":     {"127.0.0.1\n", "at least one name"},
		"fail/swapped":     {"a.test 127.0.0.1\n", "line 1"},
	} {
		t.Run(name, func(t *testing.T) {
			err := CheckHostsFile(writeHosts(t, tc.content))
			if tc.want == "" && err != nil {
				t.Fatal(err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
	if err := CheckHostsFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("a missing file must be an error")
	}
}
