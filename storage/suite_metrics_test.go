package storage

import (
	"testing"
	"time"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/internal/audit"
)

func init() {
	suiteCases = append(suiteCases, suiteCase{"metrics/certificate-counts", testCertificateCounts})
}

// testCertificateCounts: issued counts every certificate by profile,
// revoked ones included; revoked counts by reason.
func testCertificateCounts(t *testing.T, s Store) {
	acct := newAccount(t, s)
	var certs []*acme.Certificate
	for _, profile := range []string{"default", "default", "short", "short", "short"} {
		o := readyOrder(t, s, acct)
		c := newCert(acct, o.ID, base.Add(time.Hour))
		c.Profile = profile
		noErr(t, "complete finalize", s.CompleteFinalize(ctx(t), o.ID, c))
		certs = append(certs, c)
	}
	noErr(t, "revoke", s.RevokeCertificate(ctx(t), certs[0].ID, 1, base, audit.Event{}))
	noErr(t, "revoke", s.RevokeCertificate(ctx(t), certs[2].ID, 1, base, audit.Event{}))
	noErr(t, "revoke", s.RevokeCertificate(ctx(t), certs[3].ID, 4, base, audit.Event{}))
	issued, revoked, err := s.CertificateCounts(ctx(t))
	noErr(t, "counts", err)
	if len(issued) != 2 || issued["default"] != 2 || issued["short"] != 3 {
		t.Errorf("issued = %v, want default 2, short 3", issued)
	}
	if len(revoked) != 2 || revoked[1] != 2 || revoked[4] != 1 {
		t.Errorf("revoked = %v, want reason 1: 2, reason 4: 1", revoked)
	}
	if pools := s.SQLPools(); pools["certmint"] == nil {
		t.Errorf("SQLPools = %v, want the writing pool as \"certmint\"", pools)
	}
}
