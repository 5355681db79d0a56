package storage

import (
	"context"
	"fmt"
	"strings"
)

func normAccount(a *Account) {
	a.CreatedAt = utc(a.CreatedAt)
}

func (s *gormStore) CreateAccount(ctx context.Context, a *Account) error {
	if a.ID == "" {
		a.ID = NewID()
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = s.now()
	}
	a.CreatedAt = ts(a.CreatedAt)
	if err := s.q(ctx).Create(a).Error; err != nil {
		return fmt.Errorf("create account: %w", mapErr(err))
	}
	return nil
}

func (s *gormStore) GetAccount(ctx context.Context, id string) (*Account, error) {
	var a Account
	if err := s.r(ctx).Where("id = ?", id).Take(&a).Error; err != nil {
		return nil, fmt.Errorf("get account %s: %w", id, mapErr(err))
	}
	normAccount(&a)
	return &a, nil
}

func (s *gormStore) GetAccountByThumbprint(ctx context.Context, thumbprint string) (*Account, error) {
	var a Account
	if err := s.r(ctx).Where("key_thumbprint = ?", thumbprint).Take(&a).Error; err != nil {
		return nil, fmt.Errorf("get account by key: %w", mapErr(err))
	}
	normAccount(&a)
	return &a, nil
}

func (s *gormStore) UpdateAccountContact(ctx context.Context, id, contactJSON string) error {
	db := s.q(ctx)
	res := db.Model(&Account{}).Where("id = ? AND status = ?", id, StatusValid).
		Update("contact", contactJSON)
	if err := casDone(db, res, "accounts", id); err != nil {
		return fmt.Errorf("update account contact: %w", err)
	}
	return nil
}

func (s *gormStore) DeactivateAccount(ctx context.Context, id string) error {
	db := s.q(ctx)
	res := db.Model(&Account{}).Where("id = ? AND status = ?", id, StatusValid).
		Update("status", StatusDeactivated)
	if err := casDone(db, res, "accounts", id); err != nil {
		return fmt.Errorf("deactivate account: %w", err)
	}
	return nil
}

// ChangeAccountKey is one conditional UPDATE: the old thumbprint in the
// WHERE clause detects a concurrent key change, the unique index on
// key_thumbprint a new key that another account holds (both ErrConflict).
func (s *gormStore) ChangeAccountKey(ctx context.Context, id, oldThumbprint, newThumbprint, newJWK string) error {
	db := s.q(ctx)
	res := db.Model(&Account{}).
		Where("id = ? AND key_thumbprint = ? AND status = ?", id, oldThumbprint, StatusValid).
		Updates(map[string]any{"key_thumbprint": newThumbprint, "key_jwk": newJWK})
	if err := casDone(db, res, "accounts", id); err != nil {
		return fmt.Errorf("change account key: %w", err)
	}
	return nil
}

func (s *gormStore) ListAccounts(ctx context.Context, q string, page Page) ([]Account, error) {
	db := s.r(ctx).Model(&Account{})
	if page.After != "" {
		db = db.Where("id < ?", page.After)
	}
	if q = strings.TrimSpace(q); q != "" {
		pat := "%" + likeEscape(strings.ToLower(q)) + "%"
		db = db.Where(`(id = ? OR LOWER(contact) LIKE ? ESCAPE '\')`, q, pat)
	}
	var out []Account
	if err := db.Order("id DESC").Limit(limitOf(page)).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list accounts: %w", mapErr(err))
	}
	for i := range out {
		normAccount(&out[i])
	}
	return out, nil
}

func (s *gormStore) CountAccounts(ctx context.Context) (int64, error) {
	var n int64
	if err := s.r(ctx).Model(&Account{}).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count accounts: %w", mapErr(err))
	}
	return n, nil
}
