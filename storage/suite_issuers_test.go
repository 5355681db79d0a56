package storage

import (
	"errors"
	"testing"
	"time"

	"github.com/certmint/certmint/ca"
)

func init() {
	suiteCases = append(suiteCases,
		suiteCase{"issuers/change", testIssuersChange},
		suiteCase{"issuers/revoked-by", testRevokedByIssuer},
		suiteCase{"issuers/bundle-fetches", testBundleFetches},
	)
}

// testIssuersChange: records round-trip, a move applies only from the
// expected state (ErrIssuerConflict otherwise, and nothing of the change
// is kept), a certificate is set only on a record that has none.
func testIssuersChange(t *testing.T, s Store) {
	at := base.Add(time.Hour)
	recs := []ca.IssuerRecord{
		{ID: "aa01", Role: ca.RoleRoot, State: ca.StateActive, CertPEM: []byte("root"), KeyRef: ca.KeyRefDB, KeyPEM: []byte("k"), CreatedAt: base},
		{ID: "bb02", Role: ca.RoleIntermediate, State: ca.StateActive, ParentID: "aa01", CertPEM: []byte("int"), KeyRef: "pkcs11:token=t;object=o", CRLName: ca.LegacyCRLName, CreatedAt: base},
	}
	noErr(t, "record", s.ChangeIssuers(ctx(t), recs, nil, nil))
	got, err := s.ListIssuers(ctx(t))
	noErr(t, "list", err)
	if len(got) != 2 || got[0].ID != "aa01" || string(got[0].KeyPEM) != "k" || got[1].KeyRef != "pkcs11:token=t;object=o" || got[1].CRLName != ca.LegacyCRLName {
		t.Fatalf("round trip: %+v", got)
	}
	pending := ca.IssuerRecord{ID: "cc03", Role: ca.RoleIntermediate, State: ca.StatePending, ParentID: "aa01", CSRPEM: []byte("csr"), ActivateAt: &at, CreatedAt: base.Add(time.Minute)}
	noErr(t, "add pending", s.ChangeIssuers(ctx(t), []ca.IssuerRecord{pending}, nil, nil))

	// A stale move (bb02 is not pending) fails as a whole: the certificate
	// set in the same change is not kept.
	err = s.ChangeIssuers(ctx(t), nil, []ca.IssuerMove{{ID: "bb02", From: ca.StatePending, To: ca.StateActive}}, map[string][]byte{"cc03": []byte("cert")})
	if !errors.Is(err, ca.ErrIssuerConflict) {
		t.Fatalf("stale move: %v, want ErrIssuerConflict", err)
	}
	got, _ = s.ListIssuers(ctx(t))
	if len(got[2].CertPEM) != 0 || got[2].ActivateAt == nil || !got[2].ActivateAt.Equal(at.Truncate(time.Microsecond)) {
		t.Fatalf("after the failed change: %+v", got[2])
	}
	noErr(t, "switch", s.ChangeIssuers(ctx(t), nil, []ca.IssuerMove{{ID: "cc03", From: ca.StatePending, To: ca.StateActive}, {ID: "bb02", From: ca.StateActive, To: ca.StateRetiring}},
		map[string][]byte{"cc03": []byte("cert")}))
	if err := s.ChangeIssuers(ctx(t), nil, nil, map[string][]byte{"cc03": []byte("again")}); !errors.Is(err, ca.ErrIssuerConflict) {
		t.Fatalf("second certificate for one record: %v", err)
	}
	got, _ = s.ListIssuers(ctx(t))
	if got[1].State != ca.StateRetiring || got[2].State != ca.StateActive || string(got[2].CertPEM) != "cert" {
		t.Fatalf("after the switch: %+v", got)
	}
	if err := s.ChangeIssuers(ctx(t), []ca.IssuerRecord{recs[0]}, nil, nil); !errors.Is(err, ca.ErrIssuerConflict) {
		t.Fatalf("recording an issuer twice: %v, want ErrIssuerConflict", err)
	}
}

// testRevokedByIssuer: each issuer's CRL lists only what it signed; rows
// from before issuers were recorded are assigned to the first one.
func testRevokedByIssuer(t *testing.T, s Store) {
	acct := newAccount(t, s)
	old := issue(t, s, acct, base.Add(30*24*time.Hour)) // no issuer recorded
	n, err := s.AssignIssuer(ctx(t), "first")
	noErr(t, "assign", err)
	if n < 1 {
		t.Fatalf("assigned %d certificates", n)
	}
	o := readyOrder(t, s, acct)
	c := newCert(acct, o.ID, base.Add(30*24*time.Hour))
	c.IssuerID = "second"
	noErr(t, "finalize", s.CompleteFinalize(ctx(t), o.ID, c))
	for _, x := range []*struct{ id string }{{old.ID}, {c.ID}} {
		noErr(t, "revoke", s.RevokeCertificate(ctx(t), x.id, 0, base, revokeEvent(x.id)))
	}
	for issuer, want := range map[string]string{"first": old.Serial, "second": c.Serial} {
		list, err := s.ListRevokedBy(ctx(t), issuer, base)
		noErr(t, "list revoked", err)
		if len(list) != 1 || list[0].Serial != want {
			t.Fatalf("revoked by %s: %+v, want serial %s only", issuer, list, want)
		}
	}
	got, err := s.GetCertificate(ctx(t), c.ID)
	noErr(t, "get", err)
	if got.IssuerID != "second" {
		t.Fatalf("issuer of the certificate: %q", got.IssuerID)
	}
}

// testBundleFetches: one row per account, the last fetch wins.
func testBundleFetches(t *testing.T, s Store) {
	noErr(t, "record", s.RecordBundleFetch(ctx(t), BundleFetch{AccountID: "acct1", FetchedAt: base, RemoteAddr: "10.0.0.1", Roots: []string{"r1"}}))
	noErr(t, "record", s.RecordBundleFetch(ctx(t), BundleFetch{AccountID: "acct2", FetchedAt: base.Add(time.Minute), Roots: []string{"r1"}}))
	noErr(t, "record", s.RecordBundleFetch(ctx(t), BundleFetch{AccountID: "acct1", FetchedAt: base.Add(2 * time.Minute), RemoteAddr: "10.0.0.2", Roots: []string{"r1", "r2"}}))
	list, err := s.ListBundleFetches(ctx(t), 10)
	noErr(t, "list", err)
	if len(list) != 2 || list[0].AccountID != "acct1" || list[0].RemoteAddr != "10.0.0.2" || len(list[0].Roots) != 2 || !list[0].FetchedAt.Equal(base.Add(2*time.Minute).Truncate(time.Microsecond)) {
		t.Fatalf("bundle fetches: %+v", list)
	}
}
