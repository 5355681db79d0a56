package ratelimit

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certmint/certmint/internal/pgtest"
	"github.com/certmint/certmint/storage"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func tctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func open(t *testing.T, dsn string) storage.Store {
	t.Helper()
	s, err := storage.Open(tctx(t), dsn, storage.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// engines runs fn on SQLite and on a throwaway Postgres; dsn opens the
// same database again, as a second replica would.
func engines(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, filepath.Join(t.TempDir(), "certmint.db")) })
	t.Run("postgres", func(t *testing.T) { fn(t, pgtest.Start(t)) })
}

func allow(t *testing.T, l *Limiter, r Rule, key string) (bool, time.Duration) {
	t.Helper()
	ok, retry, err := l.Allow(tctx(t), r, key)
	if err != nil {
		t.Fatalf("Allow: %v", err)
	}
	return ok, retry
}

// TestTripAndRecover: Limit events pass, the next is refused with a
// Retry-After inside the window, and the key recovers when it has passed.
func TestTripAndRecover(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		c := &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
		l := New(open(t, dsn), c.Now)
		rule := Rule{Name: "newOrder/account", Limit: 3, Window: time.Hour}
		for i := range rule.Limit {
			if ok, _ := allow(t, l, rule, "acct:1"); !ok {
				t.Fatalf("event %d of %d refused", i+1, rule.Limit)
			}
			c.Add(time.Second)
		}
		ok, retry := allow(t, l, rule, "acct:1")
		if ok {
			t.Fatalf("event %d allowed, limit is %d", rule.Limit+1, rule.Limit)
		}
		if retry <= 0 || retry > rule.Window || retry%time.Second != 0 {
			t.Fatalf("retryAfter %v, want whole seconds in (0, %v]", retry, rule.Window)
		}
		if ok, _ := allow(t, l, rule, "acct:2"); !ok {
			t.Fatal("another key is limited too")
		}
		if ok, _ := allow(t, l, Rule{Name: "newOrder/ip", Limit: 1, Window: time.Hour}, "acct:1"); !ok {
			t.Fatal("another rule shares the count")
		}
		c.Add(retry - time.Second)
		if ok, _ := allow(t, l, rule, "acct:1"); ok {
			t.Fatal("allowed a second before retryAfter")
		}
		c.Add(time.Second)
		if ok, _ := allow(t, l, rule, "acct:1"); !ok {
			t.Fatal("still refused after retryAfter")
		}
	})
}

// TestReplicasShareCounts: two Limiters on their own connections to one
// database, as on two replicas, enforce one limit together.
func TestReplicasShareCounts(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		c := &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
		a, b := New(open(t, dsn), c.Now), New(open(t, dsn), c.Now)
		rule := Rule{Name: "newAccount/ip", Limit: 10, Window: time.Minute}
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			allowed int
		)
		for i := range 2 * rule.Limit {
			l := a
			if i%2 == 1 {
				l = b
			}
			wg.Go(func() {
				ok, _, err := l.Allow(tctx(t), rule, "192.0.2.7")
				if err != nil {
					t.Errorf("Allow: %v", err)
				}
				mu.Lock()
				defer mu.Unlock()
				if ok {
					allowed++
				}
			})
		}
		wg.Wait()
		if allowed != rule.Limit {
			t.Fatalf("replicas allowed %d events together, limit is %d", allowed, rule.Limit)
		}
	})
}

// TestRecordCheck is the failed-validation pattern: Check before work,
// Record each failure; Check refuses once Limit failures were recorded.
func TestRecordCheck(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		c := &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
		st := open(t, dsn)
		l := New(st, c.Now)
		rule := Rule{Name: "failedValidation/account", Limit: 2, Window: 10 * time.Minute}
		for i := range rule.Limit {
			ok, _, err := l.Check(tctx(t), rule, "acct:9")
			if err != nil || !ok {
				t.Fatalf("check after %d failures: ok=%v err=%v", i, ok, err)
			}
			if err := l.Record(tctx(t), rule, "acct:9"); err != nil {
				t.Fatalf("Record: %v", err)
			}
		}
		ok, retry, err := l.Check(tctx(t), rule, "acct:9")
		if err != nil || ok || retry <= 0 || retry > rule.Window {
			t.Fatalf("check after %d failures: ok=%v retry=%v err=%v; want refused within the window", rule.Limit, ok, retry, err)
		}
		// Check does not count: the other key is untouched by it, and
		// checking again does not push the count.
		if ok, _, _ := l.Check(tctx(t), rule, "acct:10"); !ok {
			t.Fatal("other key refused")
		}
		c.Add(retry)
		if ok, _, _ := l.Check(tctx(t), rule, "acct:9"); !ok {
			t.Fatal("still refused after the window")
		}
		// The ended window is swept; the running one stays.
		if err := l.Record(tctx(t), rule, "acct:9"); err != nil {
			t.Fatal(err)
		}
		n, err := l.Sweep(tctx(t))
		if err != nil || n != 1 {
			t.Fatalf("Sweep = %d, %v; want 1 ended window", n, err)
		}
		if h, _, _ := l.Check(tctx(t), Rule{Name: rule.Name, Limit: 1, Window: rule.Window}, "acct:9"); h {
			t.Fatal("running window was swept")
		}
	})
}

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

// BenchmarkAllow measures the hot-path cost of one check, in parallel as
// under load: go test -run - -bench Allow ./acme/ratelimit/
func BenchmarkAllow(b *testing.B) {
	for name, dsn := range map[string]func(b *testing.B) string{
		"sqlite":   func(b *testing.B) string { return filepath.Join(b.TempDir(), "certmint.db") },
		"postgres": func(b *testing.B) string { return pgtest.Start(b) },
	} {
		b.Run(name, func(b *testing.B) {
			st, err := storage.Open(context.Background(), dsn(b), storage.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			l := New(st, nil)
			rule := Rule{Name: "bench", Limit: 1 << 30, Window: time.Hour}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, _, err := l.Allow(context.Background(), rule, IPKey("192.0.2.1")); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
