package storage

import (
	"context"
	"fmt"
	"strings"

	"github.com/certmint/certmint/acme"
)

func (s *gormStore) CreateAccount(ctx context.Context, a *acme.Account) error {
	if a.ID == "" {
		a.ID = acme.NewID()
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = s.now()
	}
	a.CreatedAt = ts(a.CreatedAt)
	row := fromAccount(a)
	if err := s.q(ctx).Create(&row).Error; err != nil {
		return fmt.Errorf("create account: %w", mapErr(err))
	}
	return nil
}

func (s *gormStore) GetAccount(ctx context.Context, id string) (*acme.Account, error) {
	var a accountRow
	if err := s.r(ctx).Where("id = ?", id).Take(&a).Error; err != nil {
		return nil, fmt.Errorf("get account %s: %w", id, mapErr(err))
	}
	return a.toModel(), nil
}

func (s *gormStore) GetAccountByThumbprint(ctx context.Context, thumbprint string) (*acme.Account, error) {
	var a accountRow
	if err := s.r(ctx).Where("key_thumbprint = ?", thumbprint).Take(&a).Error; err != nil {
		return nil, fmt.Errorf("get account by key: %w", mapErr(err))
	}
	return a.toModel(), nil
}

func (s *gormStore) UpdateAccountContact(ctx context.Context, id string, contact []string) error {
	db := s.q(ctx)
	enc := ""
	if len(contact) > 0 {
		enc = encodeJSON(contact)
	}
	res := db.Model(&accountRow{}).Where("id = ? AND status = ?", id, acme.StatusValid).
		Update("contact", enc)
	if err := casDone(db, res, "accounts", id); err != nil {
		return fmt.Errorf("update account contact: %w", err)
	}
	return nil
}

func (s *gormStore) DeactivateAccount(ctx context.Context, id string) error {
	db := s.q(ctx)
	res := db.Model(&accountRow{}).Where("id = ? AND status = ?", id, acme.StatusValid).
		Update("status", acme.StatusDeactivated)
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
	res := db.Model(&accountRow{}).
		Where("id = ? AND key_thumbprint = ? AND status = ?", id, oldThumbprint, acme.StatusValid).
		Updates(map[string]any{"key_thumbprint": newThumbprint, "key_jwk": newJWK})
	if err := casDone(db, res, "accounts", id); err != nil {
		return fmt.Errorf("change account key: %w", err)
	}
	return nil
}

func (s *gormStore) ListAccounts(ctx context.Context, q string, page Page) ([]acme.Account, error) {
	db := s.r(ctx).Model(&accountRow{})
	if page.After != "" {
		db = db.Where("id < ?", page.After)
	}
	if q = strings.TrimSpace(q); q != "" {
		pat := "%" + likeEscape(strings.ToLower(q)) + "%"
		// An account keeps the path of its identity; the trust domain is
		// the server's, so a whole SPIFFE ID searches by its path.
		wl := "%" + likeEscape(strings.ToLower(spiffePath(q))) + "%"
		db = db.Where(`(id = ? OR LOWER(contact) LIKE ? ESCAPE '\' OR LOWER(workload) LIKE ? ESCAPE '\')`, q, pat, wl)
	}
	var rows []accountRow
	if err := db.Order("id DESC").Limit(limitOf(page)).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list accounts: %w", mapErr(err))
	}
	return accountModels(rows), nil
}

func accountModels(rows []accountRow) []acme.Account {
	out := make([]acme.Account, len(rows))
	for i := range rows {
		out[i] = *rows[i].toModel()
	}
	return out
}

func (s *gormStore) CountAccounts(ctx context.Context) (int64, error) {
	var n int64
	if err := s.r(ctx).Model(&accountRow{}).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count accounts: %w", mapErr(err))
	}
	return n, nil
}

// spiffePath is the path of a SPIFFE ID ("spiffe://corp.example/a/b" is
// "/a/b"); anything else is returned as it is.
func spiffePath(q string) string {
	rest, ok := strings.CutPrefix(strings.ToLower(q), "spiffe://")
	if !ok {
		return q
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return rest[i:]
	}
	return "/"
}
