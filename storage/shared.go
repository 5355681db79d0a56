package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm/clause"
)

// UseNonce relies on the primary key of used_nonces: the database, not a
// process, decides which of several concurrent uses wins.
func (s *gormStore) UseNonce(ctx context.Context, nonce string, expires time.Time) error {
	if err := s.q(ctx).Create(&usedNonce{Nonce: nonce, Expires: ts(expires)}).Error; err != nil {
		err = mapErr(err)
		if errors.Is(err, ErrConflict) {
			return fmt.Errorf("nonce used before: %w", ErrConflict)
		}
		return fmt.Errorf("record nonce use: %w", err)
	}
	return nil
}

func (s *gormStore) GetSetting(ctx context.Context, key string) (string, error) {
	var v setting
	if err := s.q(ctx).Where("name = ?", key).Take(&v).Error; err != nil {
		return "", fmt.Errorf("get setting %s: %w", key, mapErr(err))
	}
	return v.Value, nil
}

// InitSetting inserts unless present, then reads back whatever won.
func (s *gormStore) InitSetting(ctx context.Context, key, value string) (string, error) {
	db := s.q(ctx)
	err := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&setting{Name: key, Value: value}).Error
	if err != nil {
		return "", fmt.Errorf("init setting %s: %w", key, mapErr(err))
	}
	return s.GetSetting(ctx, key)
}

// AcquireLease is one upsert: it inserts a new lease, or takes over the
// row when it expired or already belongs to holder. When another holder's
// lease is still running the conditional DO UPDATE changes no row, which
// both engines report as zero rows affected.
func (s *gormStore) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	now = ts(now)
	until := ts(now.Add(ttl))
	res := s.q(ctx).Exec(`INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.expires_at < ? OR leases.holder = ?`, name, holder, until, now, holder)
	if res.Error != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, mapErr(res.Error))
	}
	return res.RowsAffected == 1, nil
}
