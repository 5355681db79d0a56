package storage

import (
	"errors"
	"testing"
	"time"
)

func init() {
	suiteCases = append(suiteCases, suiteCase{"rowsql/null-text-reads-empty", testNullTextReadsEmpty})
}

// testNullTextReadsEmpty: a row written before a column existed has NULL
// there; the generated hot-path reads (rowsql.go) give "" and 0, as gorm
// does, instead of failing the request.
func testNullTextReadsEmpty(t *testing.T, s Store) {
	acct := newAccount(t, s)
	c := issue(t, s, acct, base.Add(time.Hour))
	db := gormOf(s).db
	noErr(t, "null columns", db.Exec(`UPDATE certificates SET common_name = NULL, profile = NULL, key_hash = NULL,
		ari_id = NULL, replaced_by = NULL, revocation_reason = NULL WHERE id = ?`, c.ID).Error)
	got, err := s.GetCertificate(ctx(t), c.ID)
	noErr(t, "get", err)
	if got.CommonName != "" || got.Profile != "" || got.ARIID != "" || got.RevocationReason != 0 || got.Serial != c.Serial {
		t.Fatalf("read back %+v", got)
	}
	if _, err := s.GetCertificate(ctx(t), "no-such-id"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing certificate: %v, want ErrNotFound", err)
	}
}
