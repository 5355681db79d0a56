package ratelimit_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/certmint/certmint/acme/ratelimit"
	"github.com/certmint/certmint/storage"
	"github.com/certmint/certmint/tools/pgtest"
)

// These tests run the Limiter on storage's Store, on SQLite and on
// Postgres: what they check (atomic counts shared by replicas, sweeping)
// is the database's part of the contract. They are an external test
// package because storage imports ratelimit.

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

func allow(t *testing.T, l *ratelimit.Limiter, r ratelimit.Rule, key string) (bool, time.Duration) {
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
		l := ratelimit.New(open(t, dsn), c.Now)
		rule := ratelimit.Rule{Name: "newOrder/account", Limit: 3, Window: time.Hour}
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
		if ok, _ := allow(t, l, ratelimit.Rule{Name: "newOrder/ip", Limit: 1, Window: time.Hour}, "acct:1"); !ok {
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
		a, b := ratelimit.New(open(t, dsn), c.Now), ratelimit.New(open(t, dsn), c.Now)
		rule := ratelimit.Rule{Name: "newAccount/ip", Limit: 10, Window: time.Minute}
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
		l := ratelimit.New(st, c.Now)
		rule := ratelimit.Rule{Name: "failedValidation/account", Limit: 2, Window: 10 * time.Minute}
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
		if h, _, _ := l.Check(tctx(t), ratelimit.Rule{Name: rule.Name, Limit: 1, Window: rule.Window}, "acct:9"); h {
			t.Fatal("running window was swept")
		}
	})
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
			l := ratelimit.New(st, nil)
			rule := ratelimit.Rule{Name: "bench", Limit: 1 << 30, Window: time.Hour}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, _, err := l.Allow(context.Background(), rule, ratelimit.IPKey("192.0.2.1")); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
