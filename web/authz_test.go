package web

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/certmint/certmint/acme"
)

// TestDNSPersistRecordShown: the order and authorization pages show the
// _validation-persist record a dns-persist-01 challenge matched, and its
// persistUntil brings the authorization's expiry forward.
func TestDNSPersistRecordShown(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	acct := &acme.Account{KeyThumbprint: "tp-" + acme.NewID(), KeyJWK: "{}", Status: acme.StatusValid}
	must(t, f.store.CreateAccount(ctx, acct))
	a := acme.Authorization{ID: acme.NewID(), AccountID: acct.ID, Type: "dns", Value: "persist.example.test",
		Wildcard: true, Status: acme.StatusPending, Expires: time.Now().Add(24 * time.Hour), CreatedAt: time.Now(),
		Challenges: []acme.Challenge{{ID: acme.NewID(), Type: "dns-persist-01", Token: "-", Status: acme.StatusPending}}}
	o := &acme.Order{AccountID: acct.ID, ID: acme.NewID(), Status: acme.StatusPending, Expires: time.Now().Add(time.Hour),
		Identifiers: []acme.Identifier{{Type: "dns", Value: "*.persist.example.test"}}, Names: []string{"*.persist.example.test"}, AuthzIDs: []string{a.ID}}
	must(t, f.store.CreateOrder(ctx, o, []acme.Authorization{a}))
	until := time.Now().Add(2 * time.Hour).Truncate(time.Second)
	rec := "ca.example.test; accounturi=https://ca.example.test/acme/account/" + acct.ID + "; policy=wildcard"
	must(t, f.store.RecordDNSPersistMatch(ctx, acme.DNSPersistMatch{ChallengeID: a.Challenges[0].ID, AuthzID: a.ID,
		Name: "_validation-persist.persist.example.test", Record: rec, PersistUntil: &until}))
	must(t, f.store.CompleteChallenge(ctx, a.Challenges[0].ID, nil, time.Now()))

	got, err := f.store.GetAuthorization(ctx, a.ID)
	must(t, err)
	if !got.Expires.Equal(until) {
		t.Errorf("authorization expires %v, want persistUntil %v", got.Expires, until)
	}
	c := f.signedIn()
	for _, path := range []string{"/orders/" + o.ID, "/authz/" + a.ID} {
		resp, body := f.get(c, path)
		if resp.StatusCode != 200 || !strings.Contains(body, "_validation-persist.persist.example.test TXT") ||
			!strings.Contains(body, "accounturi=https://ca.example.test/acme/account/"+acct.ID+"; policy=wildcard") {
			t.Errorf("GET %s: %d, the matched record is not shown:\n%s", path, resp.StatusCode, body)
		}
	}
}
