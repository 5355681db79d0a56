package validate

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestIsLocalhost(t *testing.T) {
	for name, want := range map[string]bool{
		"localhost": true, "LOCALHOST.": true, "app.localhost": true, "a.b.Localhost.": true,
		"localhost.test": false, "mylocalhost": false, "app.localhost.example": false, "": false,
	} {
		if got := isLocalhost(name); got != want {
			t.Errorf("isLocalhost(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestLocalhostNames: names under localhost validate on loopback with no
// DNS answer for them at all (the test DNS server says NXDOMAIN to every
// name, and a hosts table points app.localhost elsewhere), as RFC 6761
// §6.3 asks; TXT look-ups under localhost get a negative answer that says
// why; and where the policy denies loopback the dial is refused with the
// usual problem.
func TestLocalhostNames(t *testing.T) {
	cs := newChallengeServer(t, "tcp", "127.0.0.1:0")
	dnsSrv := newTestDNS(t, true)
	port, _ := strconv.Atoi(cs.port)
	hosts := writeHosts(t, "192.0.2.7 app.localhost\n")
	ctx := context.Background()
	req := func(name string) Request {
		return Request{Type: TypeHTTP01, IdentType: IdentDNS, Value: name, Token: "good", KeyAuth: keyAuth("good")}
	}

	v := New(Config{HTTPPort: port, Resolver: dnsSrv.Addr, HostsFile: hosts})
	for _, name := range []string{"app.localhost", "localhost", "deep.api.localhost"} {
		if err := v.Validate(ctx, req(name)); err != nil {
			t.Errorf("http-01 for %s: %v", name, err)
		}
	}
	v4, v6, err := v.dns.lookupIP(ctx, "API.localhost.")
	if err != nil || len(v4) != 1 || v4[0] != netip.MustParseAddr("127.0.0.1") || len(v6) != 1 || v6[0] != netip.IPv6Loopback() {
		t.Errorf("api.localhost resolved to %v %v (%v), want 127.0.0.1 and ::1", v4, v6, err)
	}
	if n := dnsSrv.queries(); n != 0 {
		t.Errorf("%d DNS queries for localhost names, want none", n)
	}

	err = v.Validate(ctx, Request{Type: TypeDNS01, IdentType: IdentDNS, Value: "app.localhost", KeyAuth: keyAuth("good")})
	var ve *Error
	if !errors.As(err, &ve) || ve.Kind != KindDNS || !strings.Contains(ve.Detail, "localhost name") || !strings.Contains(ve.Detail, "RFC 6761") {
		t.Errorf("dns-01 for app.localhost: %v; want a dns problem naming RFC 6761", err)
	}

	denied := New(Config{HTTPPort: port, Resolver: dnsSrv.Addr, Timeout: 5 * time.Second,
		Denied: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	err = denied.Validate(ctx, req("app.localhost"))
	if !errors.As(err, &ve) || ve.Kind != KindConnection || !strings.Contains(ve.Detail, "127.0.0.1 is not an allowed validation target") {
		t.Errorf("with loopback denied: %v; want the policy's connection problem", err)
	}
}
