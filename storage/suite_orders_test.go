package storage

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/internal/audit"
)

func init() {
	suiteCases = append(suiteCases,
		suiteCase{"orders/lifecycle", testOrderLifecycle},
		suiteCase{"orders/failed-challenge", testOrderFailedChallenge},
		suiteCase{"orders/concurrent-authz-completion", testConcurrentAuthzCompletion},
		suiteCase{"orders/deactivate-authz", testDeactivateAuthz},
		suiteCase{"orders/reuse-authz", testReuseAuthz},
		suiteCase{"orders/finalize", testFinalize},
		suiteCase{"orders/expire-stale", testExpireStale},
		suiteCase{"orders/paging", testOrderPaging},
		suiteCase{"concurrent-writers", testConcurrentWriters},
	)
}

func testOrderLifecycle(t *testing.T, s Store) {
	acct := newAccount(t, s)
	o, authzs := newOrder(t, s, acct, "a.example.com", "b.example.com")
	got, err := s.GetOrder(ctx(t), o.ID)
	noErr(t, "get order", err)
	if !slices.Equal(got.AuthzIDs, o.AuthzIDs) || got.Status != acme.StatusPending ||
		!slices.Equal(got.Names, o.Names) || !slices.Equal(got.Identifiers, o.Identifiers) {
		t.Fatalf("order = %+v, want authzs %v", got, o.AuthzIDs)
	}
	if got.Expires.Location() != time.UTC || !got.Expires.Equal(o.Expires) {
		t.Fatalf("Expires = %v, want %v in UTC", got.Expires, o.Expires)
	}
	_, err = s.GetOrder(ctx(t), "nope")
	wantErr(t, "unknown order", err, ErrNotFound)

	az, err := s.GetAuthorization(ctx(t), authzs[0].ID)
	noErr(t, "get authz", err)
	if len(az.Challenges) != 3 || az.Challenges[0].Type != "http-01" || az.Challenges[2].Type != "tls-alpn-01" {
		t.Fatalf("challenges not in position order: %+v", az.Challenges)
	}
	ch, az2, err := s.GetChallenge(ctx(t), authzs[0].Challenges[1].ID)
	noErr(t, "get challenge", err)
	if ch.Type != "dns-01" || az2.ID != authzs[0].ID || len(az2.Challenges) != 3 {
		t.Fatalf("GetChallenge = %+v, %+v", ch, az2)
	}
	_, _, err = s.GetChallenge(ctx(t), "nope")
	wantErr(t, "unknown challenge", err, ErrNotFound)

	c0 := authzs[0].Challenges[0].ID
	noErr(t, "start", s.StartChallenge(ctx(t), c0))
	wantErr(t, "start twice", s.StartChallenge(ctx(t), c0), ErrConflict)
	wantErr(t, "start unknown", s.StartChallenge(ctx(t), "nope"), ErrNotFound)
	noErr(t, "complete", s.CompleteChallenge(ctx(t), c0, nil, base))
	wantErr(t, "complete twice", s.CompleteChallenge(ctx(t), c0, nil, base), ErrConflict)
	if st := orderStatus(t, s, o.ID); st != acme.StatusPending {
		t.Fatalf("order %s after one of two authzs, want pending", st)
	}
	_, ch0, _ := s.GetChallenge(ctx(t), c0)
	if ch0.Status != acme.StatusValid || ch0.Challenges[0].Status != acme.StatusValid || ch0.Challenges[0].Validated == nil {
		t.Fatalf("authz after validation: %+v", ch0)
	}
	// Another challenge of the now valid authorization cannot start.
	wantErr(t, "start on valid authz", s.StartChallenge(ctx(t), authzs[0].Challenges[1].ID), ErrConflict)

	// A quick validation is recorded straight from pending, never having
	// been marked processing; the order still becomes ready with it.
	noErr(t, "complete from pending", s.CompleteChallenge(ctx(t), authzs[1].Challenges[0].ID, nil, base))
	wantErr(t, "start after complete", s.StartChallenge(ctx(t), authzs[1].Challenges[0].ID), ErrConflict)
	if st := orderStatus(t, s, o.ID); st != acme.StatusReady {
		t.Fatalf("order %s after all authzs valid, want ready", st)
	}
}

func testOrderFailedChallenge(t *testing.T, s Store) {
	acct := newAccount(t, s)
	o, authzs := newOrder(t, s, acct, "a.example.com", "b.example.com")
	validate(t, s, authzs[0], false)
	got, err := s.GetOrder(ctx(t), o.ID)
	noErr(t, "get order", err)
	if got.Status != acme.StatusInvalid || got.Error == nil || got.Error.Type != acme.ProblemNS+"unauthorized" {
		t.Fatalf("order after failed challenge: %s %+v, want invalid with problem", got.Status, got.Error)
	}
	az, _ := s.GetAuthorization(ctx(t), authzs[0].ID)
	if az.Status != acme.StatusInvalid || az.Challenges[0].Error == nil || az.Challenges[0].Error.Type != acme.ProblemNS+"unauthorized" ||
		az.Challenges[0].Status != acme.StatusInvalid {
		t.Fatalf("authz after failed challenge: %+v", az)
	}
	// The order stays invalid when its other authorization succeeds.
	validate(t, s, authzs[1], true)
	if st := orderStatus(t, s, o.ID); st != acme.StatusInvalid {
		t.Fatalf("order %s, want invalid", st)
	}
}

// testConcurrentAuthzCompletion completes both authorizations of orders
// at the same time: each order must end up ready, whichever commits last.
func testConcurrentAuthzCompletion(t *testing.T, s Store) {
	acct := newAccount(t, s)
	for range 10 {
		o, authzs := newOrder(t, s, acct, "a.example.com", "b.example.com")
		for _, a := range authzs {
			noErr(t, "start", s.StartChallenge(ctx(t), a.Challenges[0].ID))
		}
		var wg sync.WaitGroup
		for _, a := range authzs {
			wg.Go(func() {
				if err := s.CompleteChallenge(ctx(t), a.Challenges[0].ID, nil, base); err != nil {
					t.Errorf("complete: %v", err)
				}
			})
		}
		wg.Wait()
		if st := orderStatus(t, s, o.ID); st != acme.StatusReady {
			t.Fatalf("order %s after concurrent completion, want ready", st)
		}
	}
}

func testDeactivateAuthz(t *testing.T, s Store) {
	acct := newAccount(t, s)
	o := readyOrder(t, s, acct)
	noErr(t, "deactivate", s.DeactivateAuthorization(ctx(t), o.AuthzIDs[0]))
	wantErr(t, "deactivate twice", s.DeactivateAuthorization(ctx(t), o.AuthzIDs[0]), ErrConflict)
	wantErr(t, "deactivate unknown", s.DeactivateAuthorization(ctx(t), "nope"), ErrNotFound)
	if st := orderStatus(t, s, o.ID); st != acme.StatusInvalid {
		t.Fatalf("ready order %s after deactivating its authz, want invalid", st)
	}
}

func testReuseAuthz(t *testing.T, s Store) {
	acct, other := newAccount(t, s), newAccount(t, s)
	o := readyOrder(t, s, acct)
	az, _ := s.GetAuthorization(ctx(t), o.AuthzIDs[0])
	found, err := s.FindReusableAuthorization(ctx(t), acct.ID, "dns", az.Value, false, base)
	noErr(t, "find", err)
	if found.ID != az.ID || len(found.Challenges) != 3 {
		t.Fatalf("found %+v", found)
	}
	for name, f := range map[string]func() error{
		"other account": func() error {
			_, err := s.FindReusableAuthorization(ctx(t), other.ID, "dns", az.Value, false, base)
			return err
		},
		"wildcard": func() error {
			_, err := s.FindReusableAuthorization(ctx(t), acct.ID, "dns", az.Value, true, base)
			return err
		},
		"expires too soon": func() error {
			_, err := s.FindReusableAuthorization(ctx(t), acct.ID, "dns", az.Value, false, az.Expires)
			return err
		},
	} {
		wantErr(t, name, f(), ErrNotFound)
	}
	// A new order reusing the authorization is created ready-able at once.
	o2 := &acme.Order{ID: acme.NewID(), AccountID: acct.ID, Status: acme.StatusReady, Expires: base.Add(time.Hour),
		Identifiers: []acme.Identifier{{Type: "dns", Value: az.Value}}, Names: []string{az.Value}, AuthzIDs: []string{az.ID}}
	noErr(t, "order with reused authz", s.CreateOrder(ctx(t), o2, nil))
	got, _ := s.GetOrder(ctx(t), o2.ID)
	if !slices.Equal(got.AuthzIDs, []string{az.ID}) {
		t.Fatalf("authzs %v", got.AuthzIDs)
	}
	// Pre-authorization.
	pre := newAuthz(acct, "pre.example.com")
	pre.PreAuth = true
	noErr(t, "pre-authorization", s.CreateAuthorization(ctx(t), &pre))
	gotPre, err := s.GetAuthorization(ctx(t), pre.ID)
	noErr(t, "get pre-authorization", err)
	if !gotPre.PreAuth || len(gotPre.Challenges) != 3 || gotPre.Challenges[0].AuthzID != pre.ID {
		t.Fatalf("pre-authorization %+v", gotPre)
	}
}

// testFinalize: CompleteFinalize moves a ready order to valid together
// with its certificate, once: a second finalize, a taken serial, an order
// that is not ready and an unknown order all fail and store nothing.
func testFinalize(t *testing.T, s Store) {
	acct := newAccount(t, s)
	taken := issue(t, s, acct, base.Add(90*24*time.Hour))

	o := readyOrder(t, s, acct)
	dup := newCert(acct, o.ID, base.Add(time.Hour))
	dup.Serial = taken.Serial
	issued := func(c *acme.Certificate) audit.Event {
		return audit.Event{Actor: "system", Action: audit.CertIssue, Target: audit.Certificate(c.ID)}
	}
	wantErr(t, "duplicate serial", s.CompleteFinalize(ctx(t), o.ID, dup, issued(dup)), ErrConflict)
	if st := orderStatus(t, s, o.ID); st != acme.StatusReady {
		t.Fatalf("order %s after serial conflict, want still ready", st)
	}
	_, err := s.GetCertificate(ctx(t), dup.ID)
	wantErr(t, "conflicting cert not stored", err, ErrNotFound)
	wantErr(t, "complete unknown", s.CompleteFinalize(ctx(t), "nope", newCert(acct, "nope", base)), ErrNotFound)

	pending, _ := newOrder(t, s, acct, "pending.example.com")
	wantErr(t, "complete pending order", s.CompleteFinalize(ctx(t), pending.ID, newCert(acct, pending.ID, base)), ErrConflict)
	if st := orderStatus(t, s, pending.ID); st != acme.StatusPending {
		t.Fatalf("pending order %s after a refused finalize", st)
	}

	// Two concurrent finalizes of one order: one wins, the other conflicts.
	certs := []*acme.Certificate{newCert(acct, o.ID, base.Add(time.Hour)), newCert(acct, o.ID, base.Add(time.Hour))}
	results := make([]error, len(certs))
	var wg sync.WaitGroup
	for i, c := range certs {
		wg.Go(func() { results[i] = s.CompleteFinalize(ctx(t), o.ID, c, issued(c)) })
	}
	wg.Wait()
	if (results[0] == nil) == (results[1] == nil) || !(isConflict(results[0]) || isConflict(results[1])) {
		t.Fatalf("concurrent CompleteFinalize: %v, %v; want one winner and one ErrConflict", results[0], results[1])
	}
	winner, loser := certs[0], certs[1]
	if results[0] != nil {
		winner, loser = loser, winner
	}
	got, _ := s.GetOrder(ctx(t), o.ID)
	if got.Status != acme.StatusValid || got.CertificateID != winner.ID {
		t.Fatalf("order after finalize: %s cert %q, want valid with %s", got.Status, got.CertificateID, winner.ID)
	}
	_, err = s.GetCertificate(ctx(t), loser.ID)
	wantErr(t, "losing cert not stored", err, ErrNotFound)
	// The audit entry is written with the certificate, in its transaction.
	events, err := s.ListAuditEvents(ctx(t), audit.CertIssue, Page{})
	noErr(t, "list audit", err)
	if len(events) != 1 || events[0].Target != audit.Certificate(winner.ID) {
		t.Fatalf("audit events after finalize: %+v, want one for %s", events, winner.ID)
	}
	wantErr(t, "complete twice", s.CompleteFinalize(ctx(t), o.ID, newCert(acct, o.ID, base)), ErrConflict)
}

func testExpireStale(t *testing.T, s Store) {
	acct := newAccount(t, s)
	old, oldAuthzs := newOrder(t, s, acct, "old.example.com") // expires base+24h
	ready := readyOrder(t, s, acct)
	now := base.Add(25 * time.Hour)
	fresh := &acme.Order{ID: acme.NewID(), AccountID: acct.ID, Status: acme.StatusPending, Expires: now.Add(time.Hour),
		Identifiers: []acme.Identifier{{Type: "dns", Value: "x"}}, Names: []string{"x"}}
	noErr(t, "fresh order", s.CreateOrder(ctx(t), fresh, nil))
	n, err := s.ExpireStale(ctx(t), now)
	noErr(t, "expire", err)
	if n != 2 { // the two expired orders; authorizations expire after 7 days
		t.Fatalf("ExpireStale changed %d rows, want 2", n)
	}
	for id, want := range map[string]string{old.ID: acme.StatusInvalid, ready.ID: acme.StatusInvalid, fresh.ID: acme.StatusPending} {
		if st := orderStatus(t, s, id); st != want {
			t.Fatalf("order status %s, want %s", st, want)
		}
	}
	n, err = s.ExpireStale(ctx(t), base.Add(8*24*time.Hour))
	noErr(t, "expire authzs", err)
	az, _ := s.GetAuthorization(ctx(t), oldAuthzs[0].ID)
	if n != 2 || az.Status != acme.StatusExpired { // the pending authz and the fresh order
		t.Fatalf("second ExpireStale changed %d rows, authz %s", n, az.Status)
	}
}

func testOrderPaging(t *testing.T, s Store) {
	acct, other := newAccount(t, s), newAccount(t, s)
	var ids []string
	for range 7 {
		o, _ := newOrder(t, s, acct, "p.example.com")
		ids = append(ids, o.ID)
	}
	newOrder(t, s, other, "q.example.com")
	var got []string
	for after := ""; ; {
		page, err := s.ListOrderIDs(ctx(t), acct.ID, after, 3)
		noErr(t, "list ids", err)
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1]
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("ListOrderIDs = %v, want %v oldest first", got, ids)
	}
	var newest []string
	for p := (Page{Limit: 3}); ; {
		page, err := s.ListOrders(ctx(t), OrderFilter{AccountID: acct.ID, Status: acme.StatusPending}, p)
		noErr(t, "list orders", err)
		if len(page) == 0 {
			break
		}
		for _, o := range page {
			newest = append(newest, o.ID)
		}
		p.After = page[len(page)-1].ID
	}
	slices.Reverse(newest)
	if !slices.Equal(newest, ids) {
		t.Fatalf("ListOrders newest first = %v", newest)
	}
	found, err := s.ListOrders(ctx(t), OrderFilter{Query: "Q.EXAMPLE"}, Page{})
	noErr(t, "search", err)
	if len(found) != 1 || found[0].AccountID != other.ID {
		t.Fatalf("search by name found %d orders", len(found))
	}
	found, _ = s.ListOrders(ctx(t), OrderFilter{Query: "%"}, Page{})
	if len(found) != 0 {
		t.Fatalf("LIKE wildcard in query matched %d orders", len(found))
	}
}

// testConcurrentWriters: 16 goroutines x 50 transactions must all
// succeed; on SQLite none may see "database is locked".
func testConcurrentWriters(t *testing.T, s Store) {
	acct := newAccount(t, s)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				a := newAuthz(acct, "w.example.com")
				o := &acme.Order{ID: acme.NewID(), AccountID: acct.ID, Status: acme.StatusPending, Expires: base,
					Identifiers: []acme.Identifier{{Type: "dns", Value: "w"}}, Names: []string{"w"}, AuthzIDs: []string{a.ID}}
				if err := s.CreateOrder(ctx(t), o, []acme.Authorization{a}); err != nil {
					t.Errorf("writer %d tx %d: %v", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
