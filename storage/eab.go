package storage

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// EABKey is an external account binding key (RFC 8555 §7.3.4). HMACKey is
// the secret shared with the client; it is shown once when created and
// never again. Allow optionally narrows what accounts bound with this key
// may order (JSON array of DNS suffixes and IP CIDRs).
type EABKey struct {
	ID        string `gorm:"primaryKey;size:64"`
	HMACKey   []byte `gorm:"not null"`
	Label     string `gorm:"size:255"`
	Allow     string `gorm:"type:text"`
	Reusable  bool   `gorm:"not null"`
	Revoked   bool   `gorm:"not null"`
	UsedBy    string `gorm:"size:64;index"` // first (for single-use keys: only) account bound
	UsedAt    *time.Time
	CreatedAt time.Time `gorm:"not null"`
}

// EABStore keeps external account binding keys.
type EABStore interface {
	CreateEABKey(ctx context.Context, k *EABKey) error
	// GetEABKey returns ErrNotFound for an unknown key ID.
	GetEABKey(ctx context.Context, id string) (*EABKey, error)
	// ListEABKeys pages keys newest first.
	ListEABKeys(ctx context.Context, page Page) ([]EABKey, error)
	// RevokeEABKey makes a key unusable for new accounts; accounts already
	// bound keep working.
	RevokeEABKey(ctx context.Context, id string) error
	// BindEABKey records that accountID used the key. For a single-use key
	// it succeeds only once (ErrConflict afterwards); a revoked key gives
	// ErrConflict.
	BindEABKey(ctx context.Context, id, accountID string, at time.Time) error
	// UnbindEABKey undoes BindEABKey when the account could not be created.
	UnbindEABKey(ctx context.Context, id, accountID string) error
	// ListAccountsByEABKey lists the accounts bound with the key.
	ListAccountsByEABKey(ctx context.Context, id string, limit int) ([]Account, error)
}

func init() {
	register("0003_eab", func(db *gorm.DB) error {
		type eabKey0003 struct {
			ID        string `gorm:"primaryKey;size:64"`
			HMACKey   []byte `gorm:"not null"`
			Label     string `gorm:"size:255"`
			Allow     string `gorm:"type:text"`
			Reusable  bool   `gorm:"not null"`
			Revoked   bool   `gorm:"not null"`
			UsedBy    string `gorm:"size:64;index:idx_eab_keys_used_by"`
			UsedAt    *time.Time
			CreatedAt time.Time `gorm:"not null"`
		}
		return db.Table("eab_keys").AutoMigrate(&eabKey0003{})
	})
}

func (s *gormStore) CreateEABKey(ctx context.Context, k *EABKey) error {
	if k.ID == "" {
		k.ID = NewID()
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = s.now()
	}
	k.CreatedAt = ts(k.CreatedAt)
	if err := s.q(ctx).Create(k).Error; err != nil {
		return fmt.Errorf("create EAB key: %w", mapErr(err))
	}
	return nil
}

func (s *gormStore) GetEABKey(ctx context.Context, id string) (*EABKey, error) {
	var k EABKey
	if err := s.r(ctx).Where("id = ?", id).Take(&k).Error; err != nil {
		return nil, fmt.Errorf("get EAB key: %w", mapErr(err))
	}
	return &k, nil
}

func (s *gormStore) ListEABKeys(ctx context.Context, page Page) ([]EABKey, error) {
	db := s.r(ctx).Order("id DESC").Limit(limitOf(page))
	if page.After != "" {
		db = db.Where("id < ?", page.After)
	}
	var out []EABKey
	if err := db.Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list EAB keys: %w", mapErr(err))
	}
	return out, nil
}

func (s *gormStore) RevokeEABKey(ctx context.Context, id string) error {
	db := s.q(ctx)
	res := db.Model(&EABKey{}).Where("id = ? AND revoked = ?", id, false).Update("revoked", true)
	if err := casDone(db, res, "eab_keys", id); err != nil {
		return fmt.Errorf("revoke EAB key: %w", err)
	}
	return nil
}

func (s *gormStore) BindEABKey(ctx context.Context, id, accountID string, at time.Time) error {
	db := s.q(ctx)
	// Single-use keys bind once; reusable keys remember their first user.
	res := db.Exec(`UPDATE eab_keys SET used_by = CASE WHEN used_by = '' OR used_by IS NULL THEN ? ELSE used_by END,
		used_at = CASE WHEN used_at IS NULL THEN ? ELSE used_at END
		WHERE id = ? AND revoked = ? AND (reusable = ? OR used_by = '' OR used_by IS NULL)`,
		accountID, ts(at), id, false, true)
	if err := casDone(db, res, "eab_keys", id); err != nil {
		return fmt.Errorf("bind EAB key: %w", err)
	}
	return nil
}

func (s *gormStore) UnbindEABKey(ctx context.Context, id, accountID string) error {
	err := s.q(ctx).Exec(`UPDATE eab_keys SET used_by = '', used_at = NULL WHERE id = ? AND used_by = ?`, id, accountID).Error
	if err != nil {
		return fmt.Errorf("unbind EAB key: %w", mapErr(err))
	}
	return nil
}

func (s *gormStore) ListAccountsByEABKey(ctx context.Context, id string, limit int) ([]Account, error) {
	var out []Account
	err := s.r(ctx).Where("eab_key_id = ?", id).Order("id DESC").Limit(limitOf(Page{Limit: limit})).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list accounts of EAB key: %w", mapErr(err))
	}
	return out, nil
}
