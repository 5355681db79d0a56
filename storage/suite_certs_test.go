package storage

import (
	"strings"
	"testing"
	"time"

	"github.com/certmint/certmint/acme/revocation"
	"github.com/certmint/certmint/internal/audit"
)

func init() {
	suiteCases = append(suiteCases,
		suiteCase{"certificates/revoke", testRevoke},
		suiteCase{"certificates/filters", testCertFilters},
		suiteCase{"certificates/paging", testCertPaging},
		suiteCase{"certificates/issued-per-day", testIssuedPerDay},
	)
}

func testRevoke(t *testing.T, s Store) {
	acct := newAccount(t, s)
	c := issue(t, s, acct, base.Add(time.Hour))
	got, err := s.GetCertificateBySerial(ctx(t), strings.ToUpper(c.Serial))
	noErr(t, "by serial", err)
	if got.ID != c.ID || string(got.DER) != string(c.DER) || got.NotAfter.Location() != time.UTC {
		t.Fatalf("got %+v", got)
	}
	noErr(t, "revoke", s.RevokeCertificate(ctx(t), c.ID, 4, base, revokeEvent(c.ID)))
	err = s.RevokeCertificate(ctx(t), c.ID, 1, base, revokeEvent(c.ID))
	wantErr(t, "revoke twice", err, ErrConflict)
	wantErr(t, "revoke twice", err, revocation.ErrAlreadyRevoked)
	wantErr(t, "revoke unknown", s.RevokeCertificate(ctx(t), "nope", 1, base, revokeEvent("nope")), ErrNotFound)
	// The revocation is audited in its transaction: once, for the one
	// that took effect.
	events, err := s.ListAuditEvents(ctx(t), audit.CertRevoke, Page{})
	noErr(t, "list audit", err)
	if len(events) != 1 || events[0].Target != audit.Certificate(c.ID) || events[0].Actor != "admin" {
		t.Fatalf("audit after revocations: %+v, want one entry for %s", events, c.ID)
	}
	got, _ = s.GetCertificate(ctx(t), c.ID)
	if !got.Revoked || got.RevocationReason != 4 || got.RevokedAt == nil || !got.RevokedAt.Equal(base.Truncate(time.Microsecond)) {
		t.Fatalf("after revoke: %+v", got)
	}
	crl, err := s.ListRevoked(ctx(t), base)
	noErr(t, "list revoked", err)
	if len(crl) != 1 || crl[0].Serial != c.Serial || crl[0].Reason != 4 || crl[0].CertificateID != c.ID {
		t.Fatalf("ListRevoked = %+v", crl)
	}
	crl, _ = s.ListRevoked(ctx(t), base.Add(2*time.Hour))
	if len(crl) != 0 {
		t.Fatalf("ListRevoked returned a certificate expired before the cut-off")
	}
}

func testCertFilters(t *testing.T, s Store) {
	acct, other := newAccount(t, s), newAccount(t, s)
	now := base
	valid := issue(t, s, acct, now.Add(60*24*time.Hour))
	expiring := issue(t, s, acct, now.Add(5*24*time.Hour))
	expired := issue(t, s, acct, now.Add(-time.Hour))
	revoked := issue(t, s, other, now.Add(60*24*time.Hour))
	noErr(t, "revoke", s.RevokeCertificate(ctx(t), revoked.ID, 0, now, revokeEvent(revoked.ID)))
	within := 30 * 24 * time.Hour
	for _, tc := range []struct {
		name string
		f    CertFilter
		want []string
	}{
		{"all", CertFilter{}, []string{revoked.ID, expired.ID, expiring.ID, valid.ID}},
		{"valid", CertFilter{State: "valid", Now: now}, []string{expiring.ID, valid.ID}},
		{"expiring", CertFilter{State: "expiring", Now: now, Within: within}, []string{expiring.ID}},
		{"expired", CertFilter{State: "expired", Now: now}, []string{expired.ID}},
		{"revoked", CertFilter{State: "revoked", Now: now}, []string{revoked.ID}},
		{"account", CertFilter{AccountID: other.ID}, []string{revoked.ID}},
		{"query/name", CertFilter{Query: strings.ToUpper(valid.Names[0][:30])}, []string{valid.ID}},
		{"query/serial", CertFilter{Query: expired.Serial}, []string{expired.ID}},
		{"query/account", CertFilter{Query: other.ID}, []string{revoked.ID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list, err := s.ListCertificates(ctx(t), tc.f, Page{})
			noErr(t, "list", err)
			var ids []string
			for _, c := range list {
				ids = append(ids, c.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("got %v, want %v", ids, tc.want)
			}
			n, err := s.CountCertificates(ctx(t), tc.f)
			noErr(t, "count", err)
			if n != int64(len(tc.want)) {
				t.Fatalf("count %d, want %d", n, len(tc.want))
			}
		})
	}
	// The dashboard's one-pass counts agree with the filters.
	st, err := s.CertificateStats(ctx(t), now)
	noErr(t, "stats", err)
	if want := (CertificateStats{Total: 4, Valid: 2, Expiring7: 1, Expiring30: 1, Revoked: 1}); st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
	_, err = s.ListCertificates(ctx(t), CertFilter{State: "bogus"}, Page{})
	if err == nil {
		t.Fatal("unknown state accepted")
	}
}

func testCertPaging(t *testing.T, s Store) {
	acct := newAccount(t, s)
	var want []string
	for range 5 {
		want = append([]string{issue(t, s, acct, base).ID}, want...)
	}
	var got []string
	for p := (Page{Limit: 2}); ; {
		page, err := s.ListCertificates(ctx(t), CertFilter{}, p)
		noErr(t, "list", err)
		if len(page) == 0 {
			break
		}
		for _, c := range page {
			got = append(got, c.ID)
		}
		p.After = page[len(page)-1].ID
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("pages %v, want %v newest first", got, want)
	}
}

func testIssuedPerDay(t *testing.T, s Store) {
	acct := newAccount(t, s)
	day := time.Date(2031, 3, 10, 23, 30, 0, 0, time.UTC)
	for i, at := range []time.Time{
		day.Add(-48 * time.Hour),          // before since
		day,                               // 2031-03-10
		day.In(time.FixedZone("Y", 7200)), // same instant, other zone: still 03-10 UTC
		day.Add(time.Hour),                // 2031-03-11 00:30 UTC
		day.Add(25 * time.Hour),           // 2031-03-12
	} {
		o := readyOrder(t, s, acct)
		c := newCert(acct, o.ID, base)
		c.CreatedAt = at
		noErr(t, "complete", s.CompleteFinalize(ctx(t), o.ID, c))
		_ = i
	}
	got, err := s.IssuedPerDay(ctx(t), day.Add(-24*time.Hour))
	noErr(t, "per day", err)
	want := map[string]int64{"2031-03-10": 2, "2031-03-11": 1, "2031-03-12": 1}
	if len(got) != len(want) {
		t.Fatalf("IssuedPerDay = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("IssuedPerDay = %v, want %v", got, want)
		}
	}
}
