package storage

import (
	"path/filepath"
	"testing"

	"github.com/certmint/certmint/acme"
)

// TestAccountCacheRacingDeactivation: a look-up that read the account just
// before a deactivation committed must not cache that old state, or the
// deactivated account (or, after a key change, the old key) would keep
// working until the server restarts.
func TestAccountCacheRacingDeactivation(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "certmint.db"))
	ac, ok := s.(*accountCache)
	if !ok {
		t.Fatalf("SQLite store is %T, want *accountCache", s)
	}
	a := newAccount(t, ac)
	ac.afterRead = func() {
		ac.afterRead = nil
		if err := ac.DeactivateAccount(ctx(t), a.ID); err != nil {
			t.Errorf("deactivate: %v", err)
		}
	}
	got, err := ac.GetAccount(ctx(t), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != acme.StatusValid {
		t.Fatalf("the racing read saw %q; it began before the deactivation", got.Status)
	}
	got, err = ac.GetAccount(ctx(t), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != acme.StatusDeactivated {
		t.Fatalf("after the deactivation returned, the account reads as %q, want deactivated", got.Status)
	}
}

// TestAccountCacheServesRepeatReads: the cache is really used; a second
// look-up of an unchanged account does not reach the database.
func TestAccountCacheServesRepeatReads(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "certmint.db"))
	ac := s.(*accountCache)
	a := newAccount(t, ac)
	if _, err := ac.GetAccount(ctx(t), a.ID); err != nil {
		t.Fatal(err)
	}
	ac.mu.RLock()
	_, cached := ac.byID[a.ID]
	ac.mu.RUnlock()
	if !cached {
		t.Fatal("a look-up of an unchanged account was not cached")
	}
}
