package storage

import (
	"testing"
	"time"

	"github.com/certmint/certmint/acme"
)

func init() {
	suiteCases = append(suiteCases, suiteCase{"dns-persist/match", testDNSPersistMatch})
}

// testDNSPersistMatch: the matched record is kept per challenge and read
// back by authorization; persistUntil brings the authorization's expiry
// forward, never back; recording again replaces the row.
func testDNSPersistMatch(t *testing.T, s Store) {
	acct := newAccount(t, s)
	_, authzs := newOrder(t, s, acct, "a.example.com", "b.example.com")
	a, b := authzs[0], authzs[1]
	until := base.Add(time.Hour).Truncate(time.Microsecond)
	m := acme.DNSPersistMatch{ChallengeID: a.Challenges[0].ID, AuthzID: a.ID, Name: "_validation-persist.a.example.com",
		Record: "ca.example; accounturi=https://ca.example/acme/account/1", PersistUntil: &until, CreatedAt: base}
	noErr(t, "record", s.RecordDNSPersistMatch(ctx(t), m))
	late := base.Add(1000 * time.Hour) // after b's expiry: changes nothing
	noErr(t, "record late", s.RecordDNSPersistMatch(ctx(t), acme.DNSPersistMatch{ChallengeID: b.Challenges[0].ID, AuthzID: b.ID,
		Name: "_validation-persist.b.example.com", Record: "r1", PersistUntil: &late, CreatedAt: base}))
	noErr(t, "record again", s.RecordDNSPersistMatch(ctx(t), acme.DNSPersistMatch{ChallengeID: b.Challenges[0].ID, AuthzID: b.ID,
		Name: "_validation-persist.b.example.com", Record: "r2", CreatedAt: base}))

	got, err := s.DNSPersistMatches(ctx(t), []string{a.ID, b.ID})
	noErr(t, "matches", err)
	if len(got) != 2 || got[m.ChallengeID].Record != m.Record || got[m.ChallengeID].PersistUntil == nil ||
		!got[m.ChallengeID].PersistUntil.Equal(until) || got[b.Challenges[0].ID].Record != "r2" {
		t.Fatalf("matches = %+v", got)
	}
	az, err := s.GetAuthorization(ctx(t), a.ID)
	noErr(t, "get a", err)
	if !az.Expires.Equal(until) {
		t.Fatalf("a expires %v, want persistUntil %v", az.Expires, until)
	}
	bz, err := s.GetAuthorization(ctx(t), b.ID)
	noErr(t, "get b", err)
	if !bz.Expires.Equal(b.Expires) {
		t.Fatalf("b expires %v, want unchanged %v", bz.Expires, b.Expires)
	}
	none, err := s.DNSPersistMatches(ctx(t), nil)
	if err != nil || len(none) != 0 {
		t.Fatalf("no authorizations: %v %v", none, err)
	}
}
