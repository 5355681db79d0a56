package storage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/internal/audit"
)

// ConsoleTeamStore is what the console needs to run for a team (issue 20):
// roles, disabled users, users from an OpenID provider, their sessions,
// and an audit log that can be filtered and counted.
type ConsoleTeamStore interface {
	// SetAdminRole changes a user's role; ErrNotFound for an unknown user.
	SetAdminRole(ctx context.Context, username, role string) error
	// SetAdminDisabled disables or enables a user. Disabling also ends
	// the user's sessions, in the same transaction.
	SetAdminDisabled(ctx context.Context, username string, disabled bool) error
	// ListUserSessions returns the sessions of username not expired at now,
	// newest first.
	ListUserSessions(ctx context.Context, username string, now time.Time) ([]Session, error)
	// DeleteUserSession ends one session of username; ErrNotFound if
	// username has no session with that token hash.
	DeleteUserSession(ctx context.Context, username, tokenHash string) error
	// UpsertOIDCUser records a sign-in through the OpenID provider: it
	// creates the user (Source "oidc") on first sign-in and otherwise
	// updates its role from the provider's groups. ErrConflict if a local
	// user has that name: a provider must not take over a local account.
	UpsertOIDCUser(ctx context.Context, username, role string, at time.Time) (*AdminUser, error)

	// FindAuditEvents pages the events that match f, newest first.
	FindAuditEvents(ctx context.Context, f AuditFilter, page Page) ([]audit.Event, error)
	// CountAuditEvents counts the events that match f.
	CountAuditEvents(ctx context.Context, f AuditFilter) (int64, error)
}

// AuditFilter selects audit events. Empty fields match everything.
// Actor and Action match exactly, Target and Q as case-insensitive
// substrings (Q of actor, action, target or detail); From and To bound
// the time (From inclusive, To exclusive). HideActions leaves out those
// actions, e.g. the high-volume certificate.issue.
type AuditFilter struct {
	Q, Actor, Action, Target string
	From, To                 time.Time
	HideActions              []string
}

var _ ConsoleTeamStore = (*gormStore)(nil)

func (s *gormStore) SetAdminRole(ctx context.Context, username, role string) error {
	res := s.q(ctx).Model(&AdminUser{}).Where("username = ?", username).Update("role", role)
	if res.Error != nil {
		return fmt.Errorf("set role of %s: %w", username, mapErr(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("set role of %s: %w", username, ErrNotFound)
	}
	return nil
}

func (s *gormStore) SetAdminDisabled(ctx context.Context, username string, disabled bool) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&AdminUser{}).Where("username = ?", username).Update("disabled", disabled)
		if res.Error != nil {
			return fmt.Errorf("disable %s: %w", username, res.Error)
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("disable %s: %w", username, ErrNotFound)
		}
		if !disabled {
			return nil
		}
		if err := tx.Where("username = ?", username).Delete(&Session{}).Error; err != nil {
			return fmt.Errorf("end sessions of %s: %w", username, err)
		}
		return nil
	})
}

func (s *gormStore) ListUserSessions(ctx context.Context, username string, now time.Time) ([]Session, error) {
	var out []Session
	err := s.r(ctx).Where("username = ? AND expires_at > ?", username, ts(now)).
		Order("created_at DESC").Limit(maxPageLimit).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list sessions of %s: %w", username, mapErr(err))
	}
	for i := range out {
		out[i].CreatedAt, out[i].ExpiresAt = utc(out[i].CreatedAt), utc(out[i].ExpiresAt)
	}
	return out, nil
}

func (s *gormStore) DeleteUserSession(ctx context.Context, username, tokenHash string) error {
	res := s.q(ctx).Where("username = ? AND token_hash = ?", username, tokenHash).Delete(&Session{})
	if res.Error != nil {
		return fmt.Errorf("end a session of %s: %w", username, mapErr(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("end a session of %s: %w", username, ErrNotFound)
	}
	return nil
}

func (s *gormStore) UpsertOIDCUser(ctx context.Context, username, role string, at time.Time) (*AdminUser, error) {
	var u AdminUser
	err := s.tx(ctx, func(tx *gorm.DB) error {
		err := tx.Where("username = ?", username).Take(&u).Error
		if err == gorm.ErrRecordNotFound {
			u = AdminUser{ID: acme.NewID(), Username: username, Role: role, Source: "oidc",
				CreatedAt: ts(at), LastLoginAt: tsp(&at)}
			return tx.Create(&u).Error
		}
		if err != nil {
			return err
		}
		if u.Source != "oidc" {
			return fmt.Errorf("a local console user is named %s: %w", username, ErrConflict)
		}
		u.Role, u.LastLoginAt = role, tsp(&at)
		return tx.Model(&AdminUser{}).Where("id = ?", u.ID).
			Updates(map[string]any{"role": role, "last_login_at": ts(at)}).Error
	})
	if err != nil {
		return nil, fmt.Errorf("record OpenID sign-in of %s: %w", username, mapErr(err))
	}
	normUser(&u)
	return &u, nil
}

// auditQuery applies f to a query of audit_events.
func auditQuery(db *gorm.DB, f AuditFilter) *gorm.DB {
	db = db.Model(&auditRow{})
	if f.Actor != "" {
		db = db.Where("actor = ?", f.Actor)
	}
	if f.Action != "" {
		db = db.Where("action = ?", f.Action)
	}
	if len(f.HideActions) > 0 {
		db = db.Where("action NOT IN ?", f.HideActions)
	}
	if f.Target = strings.TrimSpace(f.Target); f.Target != "" {
		db = db.Where(`LOWER(target) LIKE ? ESCAPE '\'`, "%"+likeEscape(strings.ToLower(f.Target))+"%")
	}
	if !f.From.IsZero() {
		db = db.Where("at >= ?", ts(f.From))
	}
	if !f.To.IsZero() {
		db = db.Where("at < ?", ts(f.To))
	}
	if q := strings.TrimSpace(f.Q); q != "" {
		pat := "%" + likeEscape(strings.ToLower(q)) + "%"
		db = db.Where(`(LOWER(actor) LIKE ? ESCAPE '\' OR LOWER(action) LIKE ? ESCAPE '\' OR LOWER(target) LIKE ? ESCAPE '\' OR LOWER(detail) LIKE ? ESCAPE '\')`,
			pat, pat, pat, pat)
	}
	return db
}

func (s *gormStore) FindAuditEvents(ctx context.Context, f AuditFilter, page Page) ([]audit.Event, error) {
	db := auditQuery(s.r(ctx), f)
	if page.After != "" {
		db = db.Where("id < ?", page.After)
	}
	var rows []auditRow
	if err := db.Order("id DESC").Limit(limitOf(page)).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list audit events: %w", mapErr(err))
	}
	out := make([]audit.Event, len(rows))
	for i, r := range rows {
		out[i] = r.toModel()
	}
	return out, nil
}

func (s *gormStore) CountAuditEvents(ctx context.Context, f AuditFilter) (int64, error) {
	var n int64
	if err := auditQuery(s.r(ctx), f).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count audit events: %w", mapErr(err))
	}
	return n, nil
}
