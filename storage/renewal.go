package storage

import (
	"context"
	"fmt"
	"strings"

	"github.com/certmint/certmint/acme"
)

// RenewFilter selects certificates for SetRenewNow; exactly one field is
// set.
type RenewFilter struct {
	CertificateID string
	AccountID     string
	NamePattern   string // a name, or "*.example.internal" for a suffix
}

func (s *gormStore) MarkReplaced(ctx context.Context, certID, orderID string) error {
	db := s.q(ctx)
	// EXISTS by primary key, not "IN (every invalid order)": the latter
	// grows with the server's history.
	res := db.Exec(`UPDATE certificates SET replaced_by = ? WHERE id = ? AND (replaced_by = '' OR replaced_by IS NULL
		OR EXISTS (SELECT 1 FROM orders WHERE orders.id = certificates.replaced_by AND orders.status = ?))`, orderID, certID, acme.StatusInvalid)
	if err := casDone(db, res, "certificates", certID); err != nil {
		return fmt.Errorf("mark certificate %s replaced: %w", certID, err)
	}
	return nil
}

func (s *gormStore) ClearReplaced(ctx context.Context, certID, orderID string) error {
	err := s.q(ctx).Exec(`UPDATE certificates SET replaced_by = '' WHERE id = ? AND replaced_by = ?`, certID, orderID).Error
	if err != nil {
		return fmt.Errorf("clear replacement of %s: %w", certID, mapErr(err))
	}
	return nil
}

func (s *gormStore) SetRenewNow(ctx context.Context, f RenewFilter) (int64, error) {
	db := s.q(ctx).Model(&certificateRow{}).Where("revoked = ? AND not_after > ?", false, ts(s.now()))
	switch {
	case f.CertificateID != "":
		db = db.Where("id = ?", f.CertificateID)
	case f.AccountID != "":
		db = db.Where("account_id = ?", f.AccountID)
	case f.NamePattern != "":
		p := strings.ToLower(strings.TrimSpace(f.NamePattern))
		if suffix, ok := strings.CutPrefix(p, "*."); ok {
			// Any name under the suffix: names is a comma-separated list.
			db = db.Where(`(names LIKE ? ESCAPE '\' OR names LIKE ? ESCAPE '\')`,
				"%."+likeEscape(suffix), "%."+likeEscape(suffix)+",%")
		} else {
			db = db.Where(`(names = ? OR names LIKE ? ESCAPE '\' OR names LIKE ? ESCAPE '\' OR names LIKE ? ESCAPE '\')`,
				p, likeEscape(p)+",%", "%,"+likeEscape(p), "%,"+likeEscape(p)+",%")
		}
	default:
		return 0, fmt.Errorf("set renew-now: empty filter")
	}
	res := db.Update("renew_now", true)
	if res.Error != nil {
		return 0, fmt.Errorf("set renew-now: %w", mapErr(res.Error))
	}
	return res.RowsAffected, nil
}
