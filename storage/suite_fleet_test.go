package storage

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/internal/audit"
	"github.com/certmint/certmint/internal/webhook"
)

func init() {
	suiteCases = append(suiteCases,
		suiteCase{"fleet/lineage-states", testLineageStates},
		suiteCase{"fleet/lineage-replaces", testLineageReplaces},
		suiteCase{"fleet/outbox", testWebhookOutbox},
		suiteCase{"fleet/backfill", testLineageBackfill},
	)
}

// finalizeNames issues a certificate for names (valid from nb to na)
// through an order that replaces the ARI ID replaces.
func finalizeNames(t *testing.T, s Store, acct *acme.Account, replaces string, nb, na time.Time, names ...string) *acme.Certificate {
	t.Helper()
	o, authzs := newOrder(t, s, acct, names...)
	if replaces != "" {
		noErr(t, "set replaces", gormOf(s).db.Model(&orderRow{}).Where("id = ?", o.ID).Update("replaces", replaces).Error)
	}
	for _, a := range authzs {
		validate(t, s, a, true)
	}
	c := newCert(acct, o.ID, na)
	c.NotBefore, c.Names, c.ARIID = nb, names, "ari-"+c.ID
	noErr(t, "complete finalize", s.CompleteFinalize(ctx(t), o.ID, c))
	return c
}

func lineages(t *testing.T, s Store, f LineageFilter) []Lineage {
	t.Helper()
	ls, err := s.ListLineages(ctx(t), f, Page{})
	noErr(t, "list lineages", err)
	return ls
}

func testLineageStates(t *testing.T, s Store) {
	acct := newAccount(t, s)
	nb := base
	na := nb.Add(90 * time.Minute) // window: +60m to +75m
	first := finalizeNames(t, s, acct, "", nb, na, "b.fleet.test", "a.fleet.test")
	for _, c := range []struct {
		at    time.Duration
		state string
	}{{10 * time.Minute, LineageHealthy}, {61 * time.Minute, LineageDue}, {76 * time.Minute, LineageOverdue}, {91 * time.Minute, LineageExpired}} {
		at := nb.Add(c.at)
		got := lineages(t, s, LineageFilter{State: c.state, Pattern: "a.fleet", Now: at})
		if len(got) != 1 || got[0].CertificateID != first.ID || got[0].State != c.state {
			t.Fatalf("at +%s: %+v, want the lineage %s", c.at, got, c.state)
		}
		if n, _ := s.CountLineages(ctx(t), LineageFilter{Pattern: "*.fleet.test", Now: at}); n != 1 {
			t.Fatalf("at +%s: %d lineages, want 1", c.at, n)
		}
	}
	if n, _ := s.CountOverdue(ctx(t), nb.Add(76*time.Minute)); n != 1 {
		t.Fatalf("CountOverdue = %d, want 1", n)
	}
	// The same names in another order, same account, no replaces: the
	// same lineage, renewed.
	second := finalizeNames(t, s, acct, "", nb.Add(70*time.Minute), na.Add(70*time.Minute), "a.fleet.test", "b.fleet.test")
	got := lineages(t, s, LineageFilter{Pattern: "a.fleet", Now: nb.Add(76 * time.Minute)})
	if len(got) != 1 || got[0].ID != first.ID || got[0].CertificateID != second.ID || got[0].Renewals != 1 ||
		got[0].LastRenewalAt == nil || got[0].State != LineageHealthy {
		t.Fatalf("after renewal: %+v", got)
	}
	// Another account with the same names is another lineage.
	finalizeNames(t, s, newAccount(t, s), "", nb, na, "a.fleet.test", "b.fleet.test")
	if n, _ := s.CountLineages(ctx(t), LineageFilter{Pattern: "a.fleet", Now: nb}); n != 2 {
		t.Fatalf("%d lineages, want 2", n)
	}
	// Revoking the current certificate: revoked and not replaced.
	noErr(t, "revoke", s.RevokeCertificate(ctx(t), second.ID, 1, nb, revokeEvent(second.ID)))
	got = lineages(t, s, LineageFilter{State: LineageRevoked, Pattern: "a.fleet", Now: nb})
	if len(got) != 1 || got[0].ID != first.ID {
		t.Fatalf("revoked: %+v", got)
	}
	// A certificate for those names afterwards starts a new lineage.
	third := finalizeNames(t, s, acct, "", nb, na, "a.fleet.test", "b.fleet.test")
	got = lineages(t, s, LineageFilter{State: LineageHealthy, Pattern: "a.fleet", Now: nb})
	if len(got) != 2 || got[0].ID != third.ID {
		t.Fatalf("after revocation a new lineage: %+v", got)
	}
	if _, err := s.ListLineages(ctx(t), LineageFilter{State: "bogus"}, Page{}); err == nil {
		t.Fatal("unknown state accepted")
	}
}

func testLineageReplaces(t *testing.T, s Store) {
	acct := newAccount(t, s)
	old := finalizeNames(t, s, acct, "", base, base.Add(time.Hour), "r1.fleet.test")
	// ARI replaces links a certificate with other names.
	next := finalizeNames(t, s, acct, old.ARIID, base, base.Add(2*time.Hour), "r1.fleet.test", "r2.fleet.test")
	got := lineages(t, s, LineageFilter{Pattern: "r1.fleet", Now: base})
	if len(got) != 1 || got[0].ID != old.ID || got[0].CertificateID != next.ID || len(got[0].Names) != 2 {
		t.Fatalf("replaces: %+v", got)
	}
	// Renew-now (RFC 9773 §4.2's past window) makes the lineage due.
	gs := gormOf(s)
	saved := gs.now
	gs.now = func() time.Time { return base.Add(time.Minute) }
	defer func() { gs.now = saved }()
	n, err := s.SetRenewNow(ctx(t), RenewFilter{NamePattern: "r2.fleet.test"})
	noErr(t, "renew now", err)
	got = lineages(t, s, LineageFilter{State: LineageDue, Pattern: "r1.fleet", Now: base.Add(2 * time.Minute)})
	if n != 1 || len(got) != 1 || got[0].ID != old.ID {
		t.Fatalf("after renew-now (%d marked): %+v", n, got)
	}
	// Paging: keyset on ID, newest first.
	for i := 0; i < 3; i++ {
		finalizeNames(t, s, acct, "", base, base.Add(time.Hour), acme.NewID()+".page.test")
	}
	p1, _ := s.ListLineages(ctx(t), LineageFilter{Pattern: ".page.test"}, Page{Limit: 2})
	p2, _ := s.ListLineages(ctx(t), LineageFilter{Pattern: ".page.test"}, Page{Limit: 2, After: p1[1].ID})
	if len(p1) != 2 || len(p2) != 1 || p2[0].ID >= p1[1].ID {
		t.Fatalf("pages %v %v", p1, p2)
	}
}

func testWebhookOutbox(t *testing.T, s Store) {
	ep, err := s.AddWebhook(ctx(t), "https://127.0.0.1:1/hook", "s3cret", "", audit.Event{Actor: "cli", Action: audit.WebhookAdd})
	noErr(t, "add webhook", err)
	only, err := s.AddWebhook(ctx(t), "https://127.0.0.1:2/hook", "other", webhook.RenewalOverdue, audit.Event{Actor: "cli", Action: audit.WebhookAdd})
	noErr(t, "add webhook", err)
	acct := newAccount(t, s)
	c := finalizeNames(t, s, acct, "", base, base.Add(90*time.Minute), "hook.fleet.test")
	now := base.Add(time.Minute)
	got, err := s.ClaimDeliveries(ctx(t), "r1", now, time.Minute, 10)
	noErr(t, "claim", err)
	if len(got) != 1 || got[0].EventType != webhook.CertificateIssued || got[0].EndpointID != ep.ID || string(got[0].Secret) != "s3cret" {
		t.Fatalf("claimed %+v, want the issued event for %s", got, ep.ID)
	}
	var body struct {
		ID, Type string
		Data     struct {
			CertificateID string `json:"certificate_id"`
		}
	}
	if json.Unmarshal(got[0].Body, &body) != nil || body.ID != got[0].EventID || body.Data.CertificateID != c.ID {
		t.Fatalf("body %s", got[0].Body)
	}
	// Claimed: another replica gets nothing until the lease runs out.
	if again, _ := s.ClaimDeliveries(ctx(t), "r2", now, time.Minute, 10); len(again) != 0 {
		t.Fatalf("claimed twice: %+v", again)
	}
	noErr(t, "retry later", s.FinishDelivery(ctx(t), got[0].ID, "r1", 500, "HTTP 500", now, now.Add(10*time.Second)))
	retry, _ := s.ClaimDeliveries(ctx(t), "r2", now.Add(11*time.Second), time.Minute, 10)
	if len(retry) != 1 || retry[0].EventID != got[0].EventID || retry[0].Attempts != 2 {
		t.Fatalf("retry: %+v", retry)
	}
	// The first holder's late answer no longer counts.
	noErr(t, "stale finish", s.FinishDelivery(ctx(t), retry[0].ID, "r1", 200, "", now, time.Time{}))
	noErr(t, "delivered", s.FinishDelivery(ctx(t), retry[0].ID, "r2", 200, "", now.Add(12*time.Second), time.Time{}))
	ds, _ := s.ListDeliveries(ctx(t), DeliveryDelivered, Page{})
	if len(ds) != 1 || ds[0].EndpointURL != ep.URL || ds[0].Attempts != 2 || ds[0].Secret != nil {
		t.Fatalf("delivered: %+v", ds)
	}
	// Overdue: announced once, to both endpoints.
	for i := 0; i < 2; i++ {
		n, err := s.NotifyOverdue(ctx(t), base.Add(80*time.Minute))
		noErr(t, "notify overdue", err)
		if want := 1 - i; n != want {
			t.Fatalf("sweep %d announced %d, want %d", i, n, want)
		}
	}
	due, _ := s.ClaimDeliveries(ctx(t), "r1", base.Add(81*time.Minute), time.Minute, 10)
	if len(due) != 2 || due[0].EventType != webhook.RenewalOverdue || due[0].EventID != due[1].EventID {
		t.Fatalf("overdue deliveries %+v", due)
	}
	// validation.failed: once per account and name per hour.
	for i := 0; i < 2; i++ {
		_, authzs := newOrder(t, s, acct, "bad.fleet.test")
		validate(t, s, authzs[0], false)
	}
	noErr(t, "remove", s.RemoveWebhook(ctx(t), only.ID, audit.Event{Actor: "cli", Action: audit.WebhookRemove, Target: audit.Webhook(only.ID)}))
	pending, _ := s.ListDeliveries(ctx(t), DeliveryPending, Page{})
	var failed []WebhookDelivery
	for _, d := range pending {
		if d.EventType == webhook.ValidationFailed {
			failed = append(failed, d)
		}
	}
	if len(failed) != 1 {
		t.Fatalf("validation.failed deliveries: %+v", failed)
	}
	if gone, _ := s.ListDeliveries(ctx(t), DeliveryFailed, Page{}); len(gone) != 1 || gone[0].EndpointID != only.ID {
		t.Fatalf("removing an endpoint fails its pending deliveries: %+v", gone)
	}
	if ok, _ := s.EmitOnce(ctx(t), "ca.expiring/x", time.Hour, webhook.CAExpiring, map[string]any{}, base); !ok {
		t.Fatal("first EmitOnce did not emit")
	}
	if ok, _ := s.EmitOnce(ctx(t), "ca.expiring/x", time.Hour, webhook.CAExpiring, map[string]any{}, base.Add(time.Minute)); ok {
		t.Fatal("second EmitOnce within the hour emitted")
	}
}

// The migration's backfill files existing certificates by the same rule
// as CompleteFinalize: rebuilt from scratch, the lineages come out as
// the issuing path left them.
func testLineageBackfill(t *testing.T, s Store) {
	acct := newAccount(t, s)
	finalizeNames(t, s, acct, "", base, base.Add(time.Hour), "bf1.fleet.test")
	finalizeNames(t, s, acct, "", base.Add(time.Minute), base.Add(2*time.Hour), "bf1.fleet.test")
	b := finalizeNames(t, s, acct, "", base, base.Add(time.Hour), "bf2.fleet.test")
	finalizeNames(t, s, acct, b.ARIID, base.Add(time.Minute), base.Add(2*time.Hour), "bf2.fleet.test", "bf3.fleet.test")
	c := finalizeNames(t, s, acct, "", base, base.Add(time.Hour), "bf4.fleet.test")
	noErr(t, "revoke", s.RevokeCertificate(ctx(t), c.ID, 1, base, revokeEvent(c.ID)))
	finalizeNames(t, s, acct, "", base, base.Add(time.Hour), "bf4.fleet.test")
	want := lineages(t, s, LineageFilter{Pattern: ".fleet.test", Now: base})
	db := gormOf(s).db.WithContext(ctx(t))
	noErr(t, "clear lineages", db.Exec("DELETE FROM lineages").Error)
	noErr(t, "backfill", db.Transaction(backfillLineages0013))
	got := lineages(t, s, LineageFilter{Pattern: ".fleet.test", Now: base})
	if len(got) != len(want) || len(got) != 4 {
		t.Fatalf("backfill made %d lineages, the issuing path %d (want 4):\n%+v\n%+v", len(got), len(want), got, want)
	}
	for i := range want {
		w, g := want[i], got[i]
		if fmt.Sprintf("%+v %v", w, w.LastRenewalAt) != fmt.Sprintf("%+v %v", g, g.LastRenewalAt) {
			t.Errorf("lineage %d:\nbackfill %+v\nissuing  %+v", i, g, w)
		}
	}
}
