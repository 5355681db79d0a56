package storage

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/certmint/certmint/acme"
)

func init() {
	suiteCases = append(suiteCases,
		suiteCase{"accounts", testAccounts},
		suiteCase{"accounts/key-change", testAccountKeyChange},
		suiteCase{"nonces/single-use", testNonceSingleUse},
		suiteCase{"nonces/concurrent", testNonceConcurrent},
		suiteCase{"settings", testSettings},
		suiteCase{"leases", testLeases},
		suiteCase{"ping", func(t *testing.T, s Store) { noErr(t, "ping", s.Ping(ctx(t))) }},
	)
}

func testAccounts(t *testing.T, s Store) {
	a := newAccount(t, s)
	got, err := s.GetAccount(ctx(t), a.ID)
	noErr(t, "get", err)
	if got.KeyThumbprint != a.KeyThumbprint || !got.TOSAgreed || !slices.Equal(got.Contact, a.Contact) {
		t.Fatalf("got %+v, want %+v", got, a)
	}
	if want := base.UTC().Truncate(time.Microsecond); !got.CreatedAt.Equal(want) || got.CreatedAt.Location() != time.UTC {
		t.Fatalf("CreatedAt = %v, want %v in UTC", got.CreatedAt, want)
	}
	byKey, err := s.GetAccountByThumbprint(ctx(t), a.KeyThumbprint)
	noErr(t, "get by thumbprint", err)
	if byKey.ID != a.ID {
		t.Fatalf("by thumbprint: got %s", byKey.ID)
	}
	_, err = s.GetAccount(ctx(t), "nope")
	wantErr(t, "get unknown", err, ErrNotFound)
	_, err = s.GetAccountByThumbprint(ctx(t), "nope")
	wantErr(t, "get unknown thumbprint", err, ErrNotFound)

	dup := &acme.Account{ID: acme.NewID(), KeyThumbprint: a.KeyThumbprint, KeyJWK: "{}", Status: acme.StatusValid}
	wantErr(t, "duplicate thumbprint", s.CreateAccount(ctx(t), dup), ErrConflict)

	noErr(t, "update contact", s.UpdateAccountContact(ctx(t), a.ID, []string{"mailto:b@example.com"}))
	got, _ = s.GetAccount(ctx(t), a.ID)
	if !slices.Equal(got.Contact, []string{"mailto:b@example.com"}) {
		t.Fatalf("contact = %q", got.Contact)
	}
	wantErr(t, "update unknown", s.UpdateAccountContact(ctx(t), "nope", nil), ErrNotFound)

	noErr(t, "deactivate", s.DeactivateAccount(ctx(t), a.ID))
	wantErr(t, "deactivate twice", s.DeactivateAccount(ctx(t), a.ID), ErrConflict)
	wantErr(t, "deactivate unknown", s.DeactivateAccount(ctx(t), "nope"), ErrNotFound)
	wantErr(t, "update deactivated", s.UpdateAccountContact(ctx(t), a.ID, nil), ErrConflict)

	b := newAccount(t, s)
	n, err := s.CountAccounts(ctx(t))
	noErr(t, "count", err)
	if n != 2 {
		t.Fatalf("count = %d", n)
	}
	list, err := s.ListAccounts(ctx(t), "b@example", Page{})
	noErr(t, "list", err)
	if len(list) != 1 || list[0].ID != a.ID {
		t.Fatalf("list by contact = %v", list)
	}
	list, err = s.ListAccounts(ctx(t), "", Page{Limit: 10})
	noErr(t, "list all", err)
	if len(list) != 2 || list[0].ID != b.ID {
		t.Fatalf("list not newest first: %v", list)
	}
}

func testAccountKeyChange(t *testing.T, s Store) {
	a, other := newAccount(t, s), newAccount(t, s)
	noErr(t, "change key", s.ChangeAccountKey(ctx(t), a.ID, a.KeyThumbprint, "new-tp", `{"new":1}`))
	got, err := s.GetAccountByThumbprint(ctx(t), "new-tp")
	noErr(t, "get by new key", err)
	if got.ID != a.ID || got.KeyJWK != `{"new":1}` {
		t.Fatalf("got %+v", got)
	}
	wantErr(t, "old key gone", func() error { _, err := s.GetAccountByThumbprint(ctx(t), a.KeyThumbprint); return err }(), ErrNotFound)
	wantErr(t, "stale old thumbprint", s.ChangeAccountKey(ctx(t), a.ID, a.KeyThumbprint, "x", "{}"), ErrConflict)
	wantErr(t, "key of another account", s.ChangeAccountKey(ctx(t), a.ID, "new-tp", other.KeyThumbprint, "{}"), ErrConflict)
	wantErr(t, "unknown account", s.ChangeAccountKey(ctx(t), "nope", "a", "b", "{}"), ErrNotFound)
}

func testNonceSingleUse(t *testing.T, s Store) {
	noErr(t, "first use", s.UseNonce(ctx(t), "n1", base.Add(time.Hour)))
	wantErr(t, "second use", s.UseNonce(ctx(t), "n1", base.Add(time.Hour)), ErrConflict)
	noErr(t, "other nonce", s.UseNonce(ctx(t), "n2", base.Add(-time.Hour)))
	n, err := s.ExpireStale(ctx(t), base)
	noErr(t, "expire", err)
	if n != 1 {
		t.Fatalf("ExpireStale removed %d rows, want the 1 expired nonce", n)
	}
	wantErr(t, "unexpired nonce kept", s.UseNonce(ctx(t), "n1", base.Add(time.Hour)), ErrConflict)
}

func testNonceConcurrent(t *testing.T, s Store) {
	var wins, conflicts, others int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			err := s.UseNonce(ctx(t), "shared-nonce", base.Add(time.Hour))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case isConflict(err):
				conflicts++
			default:
				others++
				t.Errorf("UseNonce: %v", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || conflicts != 49 {
		t.Fatalf("wins=%d conflicts=%d others=%d, want exactly one winner", wins, conflicts, others)
	}
}

func testSettings(t *testing.T, s Store) {
	_, err := s.GetSetting(ctx(t), "k")
	wantErr(t, "unknown", err, ErrNotFound)
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Go(func() {
			v, err := s.InitSetting(ctx(t), "k", string(rune('a'+i)))
			if err != nil {
				t.Errorf("InitSetting: %v", err)
			}
			got[i] = v
		})
	}
	wg.Wait()
	for _, v := range got {
		if v != got[0] {
			t.Fatalf("racing InitSetting disagree: %v", got)
		}
	}
	v, err := s.GetSetting(ctx(t), "k")
	noErr(t, "get", err)
	if v != got[0] {
		t.Fatalf("GetSetting = %q, want %q", v, got[0])
	}
}

func testLeases(t *testing.T, s Store) {
	acquire := func(holder string, at time.Time) bool {
		t.Helper()
		ok, err := s.AcquireLease(ctx(t), "crl", holder, at, time.Minute)
		noErr(t, "acquire", err)
		return ok
	}
	if !acquire("a", base) {
		t.Fatal("a did not get a free lease")
	}
	if acquire("b", base.Add(10*time.Second)) {
		t.Fatal("b took a's running lease")
	}
	if !acquire("a", base.Add(50*time.Second)) {
		t.Fatal("a could not extend its lease")
	}
	if acquire("b", base.Add(100*time.Second)) {
		t.Fatal("b took the lease a extended")
	}
	if !acquire("b", base.Add(111*time.Second)) {
		t.Fatal("b did not get the expired lease")
	}
	if acquire("a", base.Add(112*time.Second)) {
		t.Fatal("a took b's lease back")
	}
	ok, err := s.AcquireLease(ctx(t), "other", "a", base, time.Minute)
	if err != nil || !ok {
		t.Fatalf("lease names are independent: %v %v", ok, err)
	}
}
