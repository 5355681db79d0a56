package web

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/certmint/certmint/storage"
)

// TestDNSPersistRecordShown: the order and authorization pages show the
// _validation-persist record a dns-persist-01 challenge matched, and its
// persistUntil brings the authorization's expiry forward.
func TestDNSPersistRecordShown(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	acct := &storage.Account{KeyThumbprint: "tp-" + storage.NewID(), KeyJWK: "{}", Status: storage.StatusValid}
	must(t, f.store.CreateAccount(ctx, acct))
	a := storage.Authorization{ID: storage.NewID(), AccountID: acct.ID, Type: "dns", Value: "persist.example.test",
		Wildcard: true, Status: storage.StatusPending, Expires: time.Now().Add(24 * time.Hour), CreatedAt: time.Now(),
		Challenges: []storage.Challenge{{ID: storage.NewID(), Type: "dns-persist-01", Token: "-", Status: storage.StatusPending}}}
	o := &storage.Order{AccountID: acct.ID, ID: storage.NewID(), Status: storage.StatusPending, Expires: time.Now().Add(time.Hour),
		Identifiers: `[{"type":"dns","value":"*.persist.example.test"}]`, Names: "*.persist.example.test", AuthzIDs: []string{a.ID}}
	must(t, f.store.CreateOrder(ctx, o, []storage.Authorization{a}))
	until := time.Now().Add(2 * time.Hour).Truncate(time.Second)
	rec := "ca.example.test; accounturi=https://ca.example.test/acme/account/" + acct.ID + "; policy=wildcard"
	must(t, f.store.RecordDNSPersistMatch(ctx, storage.DNSPersistMatch{ChallengeID: a.Challenges[0].ID, AuthzID: a.ID,
		Name: "_validation-persist.persist.example.test", Record: rec, PersistUntil: &until}))
	must(t, f.store.CompleteChallenge(ctx, a.Challenges[0].ID, true, "", time.Now()))

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
