package acme

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func openTestStore(t *testing.T) *fakeStore {
	t.Helper()
	return newFakeStore()
}

func isBadNonce(err error) bool {
	var p *Problem
	return errors.As(err, &p) && p.Type == ProblemNS+"badNonce"
}

// TestNonces runs the nonce checks on both single-use mechanisms: the
// database (shared, as with Postgres replicas) and the in-memory ring
// (the embedded SQLite server).
func TestNonces(t *testing.T) {
	for _, shared := range []bool{true, false} {
		t.Run(map[bool]string{true: "shared", false: "local"}[shared], func(t *testing.T) { testNonces(t, shared) })
	}
}

func testNonces(t *testing.T, shared bool) {
	ctx := context.Background()
	st := openTestStore(t)
	now := time.Now()
	clock := func() time.Time { return now }
	n, err := NewNonces(ctx, st, time.Hour, clock, shared)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("ok/single-use", func(t *testing.T) {
		nonce := n.New()
		if err := n.Redeem(ctx, nonce); err != nil {
			t.Fatalf("first use: %v", err)
		}
		if err := n.Redeem(ctx, nonce); !isBadNonce(err) {
			t.Fatalf("second use: %v, want badNonce", err)
		}
	})
	// Replicas exist only with a shared database.
	if shared {
		t.Run("ok/another-replica", func(t *testing.T) {
			// A second Nonces on the same database is another replica: it
			// loads the same key, accepts the first one's nonce once, and
			// the first then refuses it.
			other, err := NewNonces(ctx, st, time.Hour, clock, true)
			if err != nil {
				t.Fatal(err)
			}
			nonce := n.New()
			if err := other.Redeem(ctx, nonce); err != nil {
				t.Fatalf("redeem on the other replica: %v", err)
			}
			if err := n.Redeem(ctx, nonce); !isBadNonce(err) {
				t.Fatalf("redeem again on the first: %v, want badNonce", err)
			}
		})
	}
	t.Run("fail/expired", func(t *testing.T) {
		nonce := n.New()
		now = now.Add(time.Hour + time.Second)
		defer func() { now = now.Add(-time.Hour - time.Second) }()
		if err := n.Redeem(ctx, nonce); !isBadNonce(err) {
			t.Fatalf("expired nonce: %v, want badNonce", err)
		}
	})
	t.Run("fail/forged", func(t *testing.T) {
		for _, bad := range []string{"", "abc", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", n.New() + "x"} {
			if err := n.Redeem(ctx, bad); !isBadNonce(err) {
				t.Fatalf("nonce %q: %v, want badNonce", bad, err)
			}
		}
	})
	t.Run("ok/concurrent", func(t *testing.T) {
		// 32 goroutines race to redeem each of 20 nonces: exactly one
		// wins each.
		for i := 0; i < 20; i++ {
			nonce := n.New()
			var wins atomic.Int32
			var wg sync.WaitGroup
			for g := 0; g < 32; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					err := n.Redeem(ctx, nonce)
					if err == nil {
						wins.Add(1)
					} else if !isBadNonce(err) {
						t.Errorf("unexpected error: %v", err)
					}
				}()
			}
			wg.Wait()
			if wins.Load() != 1 {
				t.Fatalf("nonce redeemed %d times, want exactly once", wins.Load())
			}
		}
	})
	t.Run("ok/sweep-keeps-single-use", func(t *testing.T) {
		// Sweeping removes only nonces past their expiry, which Redeem
		// refuses anyway, so a swept nonce cannot come back.
		nonce := n.New()
		if err := n.Redeem(ctx, nonce); err != nil {
			t.Fatal(err)
		}
		st.expireNonces(now)
		if err := n.Redeem(ctx, nonce); !isBadNonce(err) {
			t.Fatalf("after sweep: %v, want badNonce", err)
		}
	})
}

// TestLocalNoncesAcrossRestart: a nonce minted before a restart is refused
// after it, since the used-set of the previous process is gone.
func TestLocalNoncesAcrossRestart(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t)
	now := time.Now()
	clock := func() time.Time { return now }
	before, err := NewNonces(ctx, st, time.Hour, clock, false)
	if err != nil {
		t.Fatal(err)
	}
	nonce := before.New()
	now = now.Add(time.Second)
	after, err := NewNonces(ctx, st, time.Hour, clock, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := after.Redeem(ctx, nonce); !isBadNonce(err) {
		t.Fatalf("nonce from before the restart: %v, want badNonce", err)
	}
}

func BenchmarkNonceLocal(b *testing.B) {
	ctx := context.Background()
	st := newFakeStore()
	n, err := NewNonces(ctx, st, time.Hour, nil, false)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		if err := n.Redeem(ctx, n.New()); err != nil {
			b.Fatal(err)
		}
	}
}
