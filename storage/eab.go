package storage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/acme/eab"
)

// eabKeyRow is the eab_keys table (migration 0003).
type eabKeyRow struct {
	ID        string `gorm:"primaryKey;size:64"`
	HMACKey   []byte `gorm:"not null"`
	Label     string `gorm:"size:255"`
	Allow     string `gorm:"type:text"` // JSON array of allow entries
	Reusable  bool   `gorm:"not null"`
	Revoked   bool   `gorm:"not null"`
	UsedBy    string `gorm:"size:64;index"`
	UsedAt    *time.Time
	CreatedAt time.Time `gorm:"not null"`
	Workload  string    `gorm:"size:2048;not null;default:''"` // SPIFFE path (0022)
}

func (eabKeyRow) TableName() string { return "eab_keys" }

func fromEABKey(k *eab.Key) eabKeyRow {
	allow := ""
	if len(k.Allow) > 0 {
		allow = encodeJSON(k.Allow)
	}
	return eabKeyRow{ID: k.ID, HMACKey: k.HMACKey, Label: k.Label, Allow: allow, Reusable: k.Reusable,
		Revoked: k.Revoked, UsedBy: k.UsedBy, UsedAt: tsp(k.UsedAt), CreatedAt: ts(k.CreatedAt), Workload: k.Workload}
}

func (r *eabKeyRow) toModel() *eab.Key {
	return &eab.Key{ID: r.ID, HMACKey: r.HMACKey, Label: r.Label, Allow: decodeStrings(r.Allow), Reusable: r.Reusable,
		Revoked: r.Revoked, UsedBy: r.UsedBy, UsedAt: utcp(r.UsedAt), CreatedAt: utc(r.CreatedAt), Workload: r.Workload}
}

// EABStore manages external account binding keys for the console and the
// command line; acme.EABStore has what the ACME server needs of them.
type EABStore interface {
	// CreateEABKey inserts k, filling in its ID and CreatedAt.
	CreateEABKey(ctx context.Context, k *eab.Key) error
	// ListEABKeys pages keys newest first; q, when set, filters on the
	// key ID, label or workload identity (its path, or the whole SPIFFE ID).
	ListEABKeys(ctx context.Context, q string, page Page) ([]eab.Key, error)
	// RevokeEABKey makes a key unusable for new accounts; accounts already
	// bound keep working.
	RevokeEABKey(ctx context.Context, id string) error
	// ListAccountsByEABKey lists the accounts bound with the key.
	ListAccountsByEABKey(ctx context.Context, id string, limit int) ([]acme.Account, error)
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

func (s *gormStore) CreateEABKey(ctx context.Context, k *eab.Key) error {
	if k.ID == "" {
		k.ID = acme.NewID()
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = s.now()
	}
	k.CreatedAt = ts(k.CreatedAt)
	row := fromEABKey(k)
	if err := s.q(ctx).Create(&row).Error; err != nil {
		return fmt.Errorf("create EAB key: %w", mapErr(err))
	}
	return nil
}

func (s *gormStore) GetEABKey(ctx context.Context, id string) (*eab.Key, error) {
	var k eabKeyRow
	if err := s.r(ctx).Where("id = ?", id).Take(&k).Error; err != nil {
		return nil, fmt.Errorf("get EAB key: %w", mapErr(err))
	}
	return k.toModel(), nil
}

func (s *gormStore) ListEABKeys(ctx context.Context, q string, page Page) ([]eab.Key, error) {
	db := s.r(ctx).Order("id DESC").Limit(limitOf(page))
	if page.After != "" {
		db = db.Where("id < ?", page.After)
	}
	if q = strings.TrimSpace(q); q != "" {
		pat := "%" + likeEscape(strings.ToLower(q)) + "%"
		wl := "%" + likeEscape(strings.ToLower(spiffePath(q))) + "%"
		db = db.Where(`(id = ? OR LOWER(label) LIKE ? ESCAPE '\' OR LOWER(workload) LIKE ? ESCAPE '\')`, q, pat, wl)
	}
	var rows []eabKeyRow
	if err := db.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list EAB keys: %w", mapErr(err))
	}
	out := make([]eab.Key, len(rows))
	for i := range rows {
		out[i] = *rows[i].toModel()
	}
	return out, nil
}

func (s *gormStore) RevokeEABKey(ctx context.Context, id string) error {
	db := s.q(ctx)
	res := db.Model(&eabKeyRow{}).Where("id = ? AND revoked = ?", id, false).Update("revoked", true)
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

func (s *gormStore) ListAccountsByEABKey(ctx context.Context, id string, limit int) ([]acme.Account, error) {
	var rows []accountRow
	err := s.r(ctx).Where("eab_key_id = ?", id).Order("id DESC").Limit(limitOf(Page{Limit: limit})).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list accounts of EAB key: %w", mapErr(err))
	}
	return accountModels(rows), nil
}
