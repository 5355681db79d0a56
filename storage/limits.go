package storage

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/certmint/certmint/acme"
)

func init() {
	register("0006_limits", func(db *gorm.DB) error {
		if err := db.Exec("CREATE INDEX IF NOT EXISTS idx_authz_account_status ON authorizations (account_id, status)").Error; err != nil {
			return err
		}
		// Partial: only the few challenges under way are indexed, so the
		// index costs the hot path almost nothing.
		return db.Exec("CREATE INDEX IF NOT EXISTS idx_challenges_processing ON challenges (id) WHERE status = 'processing'").Error
	})
}

func (s *gormStore) CountPendingAuthorizations(ctx context.Context, accountID string) (int64, error) {
	var n int64
	err := s.r(ctx).Model(&authzRow{}).Where("account_id = ? AND "+authzPending, accountID).Count(&n).Error
	if err != nil {
		return 0, fmt.Errorf("count pending authorizations: %w", mapErr(err))
	}
	return n, nil
}

func (s *gormStore) ListProcessingChallenges(ctx context.Context, limit int) ([]acme.Challenge, error) {
	var rows []challengeRow
	// A literal, not a bound value: idx_challenges_processing is partial.
	err := s.q(ctx).Where("status = 'processing'").Order("id").Limit(limitOf(Page{Limit: limit})).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list processing challenges: %w", mapErr(err))
	}
	out := make([]acme.Challenge, len(rows))
	for i := range rows {
		out[i] = rows[i].toModel()
	}
	return out, nil
}
