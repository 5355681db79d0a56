package ratelimit

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The tests of the limiter against a real store, on both engines, are in
// store_test.go (package ratelimit_test: storage imports this package).

// TestDisabledRule: Limit 0 allows everything and never reaches the
// database (the Limiter has none).
func TestDisabledRule(t *testing.T) {
	l := New(nil, nil)
	for _, r := range []Rule{{Name: "x"}, {Name: "x", Limit: 0, Window: time.Hour}, {Name: "x", Limit: 5}} {
		if ok, _, err := l.Allow(context.Background(), r, "k"); !ok || err != nil {
			t.Fatalf("%v: Allow = %v, %v", r, ok, err)
		}
		if ok, _, err := l.Check(context.Background(), r, "k"); !ok || err != nil {
			t.Fatalf("%v: Check = %v, %v", r, ok, err)
		}
		if err := l.Record(context.Background(), r, "k"); err != nil {
			t.Fatalf("%v: Record = %v", r, err)
		}
	}
}

func TestWindow(t *testing.T) {
	rule := Rule{Name: "r", Limit: 1, Window: time.Hour}
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	_, start, end := window(rule, "k", now)
	if now.Before(start) || !now.Before(end) || end.Sub(start) != time.Hour {
		t.Fatalf("window [%v, %v) does not hold %v", start, end, now)
	}
	if _, s2, _ := window(rule, "k", end.Add(-time.Second)); !s2.Equal(start) {
		t.Fatal("window moved within itself")
	}
	if _, s3, _ := window(rule, "k", end); !s3.Equal(end) {
		t.Fatal("next window does not start at the end of the previous")
	}
	long := strings.Repeat("x", 300)
	if b, _, _ := window(rule, long, now); len(b) > 255 {
		t.Fatalf("bucket of %d bytes", len(b))
	}
}

func TestIPKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"192.0.2.1:4431", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2::9]:443", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"not-an-ip", "not-an-ip"},
	} {
		if got := IPKey(tc.in); got != tc.want {
			t.Errorf("IPKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	off := Config{}
	if err := off.Validate(); err != nil {
		t.Fatalf("all rules off: %v", err)
	}
	for name, mut := range map[string]func(*Config){
		"fail/negative-limit":  func(c *Config) { c.NewOrderPerIP.Limit = -1 },
		"fail/sub-second":      func(c *Config) { c.NewOrderPerIP.Window = 500 * time.Millisecond },
		"fail/fraction":        func(c *Config) { c.NewOrderPerIP.Window = 1500 * time.Millisecond },
		"fail/duplicate-names": func(c *Config) { c.NewOrderPerIP.Name = c.NewOrderPerAccount.Name },
	} {
		c := DefaultConfig()
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
	}
}
