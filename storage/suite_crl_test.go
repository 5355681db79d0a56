package storage

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/certmint/certmint/ca/crl"
)

func init() {
	suiteCases = append(suiteCases,
		suiteCase{"crl/number", testCRLNumber},
		suiteCase{"crl/save-get", testCRLSaveGet},
		suiteCase{"crl/revocation-state", testRevocationState},
		suiteCase{"ratelimit/count", testRateLimitCount},
		suiteCase{"ratelimit/concurrent", testRateLimitConcurrent},
		suiteCase{"ratelimit/sweep", testRateLimitSweep},
	)
}

// testCRLNumber: numbers start at 1, grow by one, never repeat under
// concurrency, and are kept per issuer.
func testCRLNumber(t *testing.T, s Store) {
	for want := int64(1); want <= 3; want++ {
		n, err := s.NextCRLNumber(ctx(t), "issuer-a")
		noErr(t, "next number", err)
		if n != want {
			t.Fatalf("NextCRLNumber = %d, want %d", n, want)
		}
	}
	if n, _ := s.NextCRLNumber(ctx(t), "issuer-b"); n != 1 {
		t.Fatalf("other issuer starts at %d, want 1", n)
	}
	const workers = 16
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[int64]bool{}
	)
	for range workers {
		wg.Go(func() {
			n, err := s.NextCRLNumber(ctx(t), "issuer-a")
			if err != nil {
				t.Errorf("concurrent next number: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[n] {
				t.Errorf("CRL number %d allocated twice", n)
			}
			seen[n] = true
		})
	}
	wg.Wait()
	for n := int64(4); n < 4+workers; n++ {
		if !seen[n] {
			t.Fatalf("numbers %v: %d missing", seen, n)
		}
	}
}

func testCRLSaveGet(t *testing.T, s Store) {
	none, err := s.GetCRL(ctx(t), "iss", 0)
	if none != nil || err != nil {
		t.Fatalf("get before save = %+v, %v; want nil, nil", none, err)
	}
	c := &crl.CRL{Issuer: "iss", Number: 5, ThisUpdate: base, NextUpdate: base.Add(24 * time.Hour),
		State: "1@x", DER: []byte{0x30, 0x03, 1, 2, 3}}
	ok, err := s.SaveCRL(ctx(t), c)
	noErr(t, "save", err)
	if !ok {
		t.Fatal("first save not stored")
	}
	got, err := s.GetCRL(ctx(t), "iss", 0)
	noErr(t, "get", err)
	if got.Number != 5 || !bytes.Equal(got.DER, c.DER) || got.State != "1@x" ||
		!got.ThisUpdate.Equal(base.Truncate(time.Microsecond)) || got.NextUpdate.Location() != time.UTC {
		t.Fatalf("GetCRL = %+v", got)
	}
	got, err = s.GetCRL(ctx(t), "iss", 5)
	noErr(t, "get header", err)
	if got.Number != 5 || got.DER != nil {
		t.Fatalf("GetCRL(newerThan=5) = number %d, %d DER bytes; want 5 and none", got.Number, len(got.DER))
	}
	for _, tc := range []struct {
		number int64
		stored bool
	}{{4, false}, {5, false}, {6, true}} {
		older := *c
		older.Number, older.DER = tc.number, []byte{byte(tc.number)}
		ok, err := s.SaveCRL(ctx(t), &older)
		noErr(t, "save again", err)
		if ok != tc.stored {
			t.Fatalf("SaveCRL(number %d) stored=%v, want %v", tc.number, ok, tc.stored)
		}
	}
	if got, _ := s.GetCRL(ctx(t), "iss", 0); got.Number != 6 || !bytes.Equal(got.DER, []byte{6}) {
		t.Fatalf("after saves: %+v", got)
	}
}

func testRevocationState(t *testing.T, s Store) {
	empty, err := s.RevocationState(ctx(t))
	noErr(t, "state", err)
	acct := newAccount(t, s)
	c1 := issue(t, s, acct, base.Add(time.Hour))
	c2 := issue(t, s, acct, base.Add(time.Hour))
	if st, _ := s.RevocationState(ctx(t)); st != empty {
		t.Fatalf("issuing changed the state: %q -> %q", empty, st)
	}
	noErr(t, "revoke", s.RevokeCertificate(ctx(t), c1.ID, 1, base, revokeEvent(c1.ID)))
	one, _ := s.RevocationState(ctx(t))
	if one == empty {
		t.Fatalf("state %q unchanged by a revocation", one)
	}
	if again, _ := s.RevocationState(ctx(t)); again != one {
		t.Fatalf("state not stable: %q then %q", one, again)
	}
	// Same revocation time as the first: the count still tells them apart.
	noErr(t, "revoke", s.RevokeCertificate(ctx(t), c2.ID, 0, base, revokeEvent(c2.ID)))
	if two, _ := s.RevocationState(ctx(t)); two == one || two == empty {
		t.Fatalf("second revocation: state %q (before %q)", two, one)
	}
}

func testRateLimitCount(t *testing.T, s Store) {
	start := base.Truncate(time.Hour)
	end := start.Add(time.Hour)
	for want := int64(1); want <= 3; want++ {
		n, err := s.AddRateLimitHits(ctx(t), "newOrder/acct:1", start, end, 1)
		noErr(t, "add", err)
		if n != want {
			t.Fatalf("AddRateLimitHits = %d, want %d", n, want)
		}
	}
	if n, _ := s.AddRateLimitHits(ctx(t), "newOrder/acct:1", start, end, 5); n != 8 {
		t.Fatalf("add 5: %d, want 8", n)
	}
	if n, _ := s.AddRateLimitHits(ctx(t), "newOrder/acct:1", end, end.Add(time.Hour), 1); n != 1 {
		t.Fatalf("next window starts at %d, want 1", n)
	}
	if n, _ := s.AddRateLimitHits(ctx(t), "newOrder/acct:2", start, end, 1); n != 1 {
		t.Fatalf("other bucket starts at %d, want 1", n)
	}
	n, err := s.RateLimitHits(ctx(t), "newOrder/acct:1", start)
	noErr(t, "hits", err)
	if n != 8 {
		t.Fatalf("RateLimitHits = %d, want 8", n)
	}
	if n, err := s.RateLimitHits(ctx(t), "nobody", start); err != nil || n != 0 {
		t.Fatalf("RateLimitHits(unknown) = %d, %v; want 0, nil", n, err)
	}
}

// testRateLimitConcurrent: concurrent increments (as from several
// replicas) lose no count and every caller sees a distinct total.
func testRateLimitConcurrent(t *testing.T, s Store) {
	start := base.Truncate(time.Minute)
	const workers = 20
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[int64]bool{}
	)
	for range workers {
		wg.Go(func() {
			n, err := s.AddRateLimitHits(ctx(t), "ip:10.0.0.1", start, start.Add(time.Minute), 1)
			if err != nil {
				t.Errorf("add: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			seen[n] = true
		})
	}
	wg.Wait()
	if n, _ := s.RateLimitHits(ctx(t), "ip:10.0.0.1", start); n != workers || len(seen) != workers {
		t.Fatalf("after %d concurrent adds: count %d, distinct results %d", workers, n, len(seen))
	}
}

func testRateLimitSweep(t *testing.T, s Store) {
	start := base.Truncate(time.Hour)
	_, err := s.AddRateLimitHits(ctx(t), "a", start, start.Add(time.Hour), 1)
	noErr(t, "add", err)
	_, err = s.AddRateLimitHits(ctx(t), "a", start.Add(time.Hour), start.Add(2*time.Hour), 1)
	noErr(t, "add", err)
	n, err := s.SweepRateLimits(ctx(t), start.Add(90*time.Minute))
	noErr(t, "sweep", err)
	if n != 1 {
		t.Fatalf("swept %d windows, want 1", n)
	}
	if h, _ := s.RateLimitHits(ctx(t), "a", start); h != 0 {
		t.Fatalf("ended window still counts %d", h)
	}
	if h, _ := s.RateLimitHits(ctx(t), "a", start.Add(time.Hour)); h != 1 {
		t.Fatalf("running window lost: %d", h)
	}
}
