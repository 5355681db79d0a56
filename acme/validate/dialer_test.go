package validate

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// Webhook deliveries dial through PolicyDialer: the validation policy
// refuses metadata and link-local addresses before any packet is sent,
// and an explicit allow list narrows it.
func TestPolicyDialerAndCheckURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := PolicyDialer(nil, nil, time.Second)
	for _, addr := range []string{"169.254.169.254:80", "[fe80::1]:80"} {
		_, err := d.DialContext(context.Background(), "tcp", addr)
		var pe *policyError
		if !errors.As(err, &pe) {
			t.Errorf("dial %s: %v, want the policy's refusal", addr, err)
		}
	}
	c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("loopback refused: %v", err)
	}
	c.Close()
	only := PolicyDialer([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, nil, time.Second)
	if _, err := only.DialContext(context.Background(), "tcp", ln.Addr().String()); err == nil {
		t.Error("an allow list without loopback still dialled loopback")
	}
	for raw, ok := range map[string]bool{
		"https://hooks.example.test/x": true, "http://127.0.0.1:9/hook": true,
		"http://169.254.169.254/latest": false, "ftp://example.test/": false, "https://user:pw@example.test/": false, "not a url": false,
	} {
		if err := CheckURL(raw, nil, nil); (err == nil) != ok {
			t.Errorf("CheckURL(%q) = %v, want ok=%v", raw, err, ok)
		}
	}
}
