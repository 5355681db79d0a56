package storage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

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
	now := ts(s.now())
	var n int64
	err := s.tx(ctx, func(tx *gorm.DB) error {
		db, err := renewNowWhere(tx.Model(&certificateRow{}), f, now)
		if err != nil {
			return err
		}
		res := db.Update("renew_now", true)
		if res.Error != nil {
			return res.Error
		}
		n = res.RowsAffected
		// The lineages of those certificates are due from now on (the
		// ARI window moved into the past): the inventory says so.
		marked, _ := renewNowWhere(tx.Model(&certificateRow{}), f, now)
		return tx.Model(&lineageRow{}).Where("certificate_id IN (?) AND window_start > ?", marked.Select("id"), now).
			Update("window_start", now).Error
	})
	if err != nil {
		return 0, fmt.Errorf("set renew-now: %w", mapErr(err))
	}
	return n, nil
}

// renewNowWhere selects the unexpired, unrevoked certificates f names.
func renewNowWhere(db *gorm.DB, f RenewFilter, now time.Time) (*gorm.DB, error) {
	db = db.Where("revoked = ? AND not_after > ?", false, now)
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
		return nil, fmt.Errorf("empty filter")
	}
	return db, nil
}
