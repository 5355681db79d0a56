package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/internal/audit"
)

// AdminUser is a console user. PasswordHash is a self-describing hash
// (bcrypt "$2a$..."); the password itself is never stored.
type AdminUser struct {
	ID           string    `gorm:"primaryKey;size:64"`
	Username     string    `gorm:"uniqueIndex;size:128;not null"`
	PasswordHash string    `gorm:"size:255;not null"`
	CreatedAt    time.Time `gorm:"not null"`
	LastLoginAt  *time.Time
	// Role is viewer, operator or admin (web.Role); Disabled users cannot
	// sign in and their sessions stop working; Source is "local"
	// (password) or "oidc" (signed in through the OpenID provider).
	Role     string `gorm:"size:16;not null;default:admin"`
	Disabled bool   `gorm:"not null;default:false"`
	Source   string `gorm:"size:16;not null;default:local"`
}

// Session is a signed-in console session. Only the SHA-256 of the cookie
// token is stored (TokenHash, lowercase hex), so a database dump cannot be
// replayed as a cookie. CSRFToken is echoed in every form of the session.
type Session struct {
	TokenHash  string    `gorm:"primaryKey;size:64"`
	Username   string    `gorm:"size:128;not null;index"`
	CSRFToken  string    `gorm:"size:64;not null"`
	RemoteAddr string    `gorm:"size:64"`
	CreatedAt  time.Time `gorm:"not null"`
	ExpiresAt  time.Time `gorm:"not null;index"`
}

// LoginThrottle counts consecutive failed sign-ins of one user name, known
// or not (so that lockouts do not reveal which names exist). It lives in
// the database so that every replica enforces the same lock.
type LoginThrottle struct {
	Username    string    `gorm:"primaryKey;size:128"`
	Failures    int       `gorm:"not null"`
	LastFailure time.Time `gorm:"not null"`
	LockedUntil *time.Time
}

// auditRow is the audit_events table; audit.Event is its model.
type auditRow struct {
	ID         string    `gorm:"primaryKey;size:64"`
	At         time.Time `gorm:"not null"`
	Actor      string    `gorm:"size:128;not null"`
	Action     string    `gorm:"size:64;not null"`
	Target     string    `gorm:"size:255"`
	Detail     string    `gorm:"type:text"`
	RemoteAddr string    `gorm:"size:64"`
}

func (auditRow) TableName() string { return "audit_events" }

func (r auditRow) toModel() audit.Event {
	return audit.Event{ID: r.ID, At: utc(r.At), Actor: r.Actor, Action: r.Action, Target: r.Target,
		Detail: r.Detail, RemoteAddr: r.RemoteAddr}
}

// auditRowOf fills in the ID and time of an event about to be written.
func auditRowOf(e audit.Event, now time.Time) *auditRow {
	if e.ID == "" {
		e.ID = acme.NewID()
	}
	if e.At.IsZero() {
		e.At = now
	}
	return &auditRow{ID: e.ID, At: ts(e.At), Actor: e.Actor, Action: e.Action, Target: e.Target,
		Detail: e.Detail, RemoteAddr: e.RemoteAddr}
}

// ConsoleStore keeps what the admin console needs beyond the ACME data:
// users, sessions, sign-in throttling and the audit log.
type ConsoleStore interface {
	// CreateAdminUser inserts u; ErrConflict if the user name is taken.
	CreateAdminUser(ctx context.Context, u *AdminUser) error
	// GetAdminUser returns ErrNotFound for an unknown user name.
	GetAdminUser(ctx context.Context, username string) (*AdminUser, error)
	// ListAdminUsers returns every user ordered by name (there are few).
	ListAdminUsers(ctx context.Context) ([]AdminUser, error)
	CountAdminUsers(ctx context.Context) (int64, error)
	// SetAdminPassword replaces the hash, lifts any sign-in lock of the
	// user and ends the user's sessions.
	SetAdminPassword(ctx context.Context, username, hash string) error

	// GetLoginThrottle returns the failure state of username; a zero value
	// (Failures 0) when there is none.
	GetLoginThrottle(ctx context.Context, username string) (LoginThrottle, error)
	// RecordLoginFailure counts one more failure at time at, atomically in
	// the database, and locks the name until at+lockFor when the count
	// reaches lockAfter. Failures older than lockFor are forgotten first.
	RecordLoginFailure(ctx context.Context, username string, at time.Time, lockAfter int, lockFor time.Duration) (LoginThrottle, error)
	// RecordLoginSuccess clears the failures and stamps LastLoginAt.
	RecordLoginSuccess(ctx context.Context, username string, at time.Time) error

	CreateSession(ctx context.Context, s *Session) error
	// GetSession returns the session whose token hashes to tokenHash if it
	// has not expired at now; ErrNotFound otherwise.
	GetSession(ctx context.Context, tokenHash string, now time.Time) (*Session, error)
	DeleteSession(ctx context.Context, tokenHash string) error
	// DeleteExpiredSessions removes sessions expired before now.
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error)

	// AddAuditEvent appends e; ID and At are filled in when empty.
	AddAuditEvent(ctx context.Context, e audit.Event) error
	// ListAuditEvents pages events newest first; q matches actor, action,
	// target or detail (substring, case-insensitive).
	ListAuditEvents(ctx context.Context, q string, page Page) ([]audit.Event, error)
}

var _ ConsoleStore = (*gormStore)(nil)

func (s *gormStore) CreateAdminUser(ctx context.Context, u *AdminUser) error {
	if u.ID == "" {
		u.ID = acme.NewID()
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = s.now()
	}
	if u.Role == "" {
		u.Role = "admin"
	}
	if u.Source == "" {
		u.Source = "local"
	}
	u.CreatedAt, u.LastLoginAt = ts(u.CreatedAt), tsp(u.LastLoginAt)
	if err := s.q(ctx).Create(u).Error; err != nil {
		return fmt.Errorf("create admin user %s: %w", u.Username, mapErr(err))
	}
	return nil
}

func normUser(u *AdminUser) { u.CreatedAt, u.LastLoginAt = utc(u.CreatedAt), utcp(u.LastLoginAt) }

func (s *gormStore) GetAdminUser(ctx context.Context, username string) (*AdminUser, error) {
	var u AdminUser
	if err := s.r(ctx).Where("username = ?", username).Take(&u).Error; err != nil {
		return nil, fmt.Errorf("get admin user %s: %w", username, mapErr(err))
	}
	normUser(&u)
	return &u, nil
}

func (s *gormStore) ListAdminUsers(ctx context.Context) ([]AdminUser, error) {
	var out []AdminUser
	if err := s.r(ctx).Order("username").Limit(maxPageLimit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list admin users: %w", mapErr(err))
	}
	for i := range out {
		normUser(&out[i])
	}
	return out, nil
}

func (s *gormStore) CountAdminUsers(ctx context.Context) (int64, error) {
	var n int64
	if err := s.r(ctx).Model(&AdminUser{}).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count admin users: %w", mapErr(err))
	}
	return n, nil
}

func (s *gormStore) SetAdminPassword(ctx context.Context, username, hash string) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&AdminUser{}).Where("username = ?", username).Update("password_hash", hash)
		if res.Error != nil {
			return fmt.Errorf("set password of %s: %w", username, res.Error)
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("set password of %s: %w", username, ErrNotFound)
		}
		if err := tx.Where("username = ?", username).Delete(&LoginThrottle{}).Error; err != nil {
			return fmt.Errorf("clear sign-in lock of %s: %w", username, err)
		}
		if err := tx.Where("username = ?", username).Delete(&Session{}).Error; err != nil {
			return fmt.Errorf("end sessions of %s: %w", username, err)
		}
		return nil
	})
}

func normThrottle(t *LoginThrottle) {
	t.LastFailure, t.LockedUntil = utc(t.LastFailure), utcp(t.LockedUntil)
}

func (s *gormStore) GetLoginThrottle(ctx context.Context, username string) (LoginThrottle, error) {
	var t LoginThrottle
	err := s.q(ctx).Where("username = ?", username).Take(&t).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return LoginThrottle{Username: username}, nil
	}
	if err != nil {
		return LoginThrottle{}, fmt.Errorf("get sign-in failures of %s: %w", username, mapErr(err))
	}
	normThrottle(&t)
	return t, nil
}

// RecordLoginFailure is one upsert that increments in SQL, so concurrent
// failures on several replicas all count; the lock is set in the same
// statement when the count reaches lockAfter.
func (s *gormStore) RecordLoginFailure(ctx context.Context, username string, at time.Time, lockAfter int, lockFor time.Duration) (LoginThrottle, error) {
	at = ts(at)
	forgetBefore := ts(at.Add(-lockFor))
	lockUntil := ts(at.Add(lockFor))
	var firstLock *time.Time
	if lockAfter <= 1 {
		firstLock = &lockUntil
	}
	err := s.q(ctx).Exec(`INSERT INTO login_throttles (username, failures, last_failure, locked_until)
		VALUES (?, 1, ?, ?)
		ON CONFLICT (username) DO UPDATE SET
		  failures = CASE WHEN login_throttles.last_failure < ? THEN 1 ELSE login_throttles.failures + 1 END,
		  last_failure = excluded.last_failure,
		  locked_until = CASE
		    WHEN (CASE WHEN login_throttles.last_failure < ? THEN 1 ELSE login_throttles.failures + 1 END) >= ? THEN ?
		    ELSE login_throttles.locked_until END`,
		username, at, firstLock, forgetBefore, forgetBefore, lockAfter, lockUntil).Error
	if err != nil {
		return LoginThrottle{}, fmt.Errorf("record sign-in failure of %s: %w", username, mapErr(err))
	}
	return s.GetLoginThrottle(ctx, username)
}

func (s *gormStore) RecordLoginSuccess(ctx context.Context, username string, at time.Time) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("username = ?", username).Delete(&LoginThrottle{}).Error; err != nil {
			return fmt.Errorf("clear sign-in failures of %s: %w", username, err)
		}
		if err := tx.Model(&AdminUser{}).Where("username = ?", username).Update("last_login_at", ts(at)).Error; err != nil {
			return fmt.Errorf("stamp sign-in of %s: %w", username, err)
		}
		return nil
	})
}

func (s *gormStore) CreateSession(ctx context.Context, se *Session) error {
	if se.CreatedAt.IsZero() {
		se.CreatedAt = s.now()
	}
	se.CreatedAt, se.ExpiresAt = ts(se.CreatedAt), ts(se.ExpiresAt)
	if err := s.q(ctx).Create(se).Error; err != nil {
		return fmt.Errorf("create session: %w", mapErr(err))
	}
	return nil
}

func (s *gormStore) GetSession(ctx context.Context, tokenHash string, now time.Time) (*Session, error) {
	var se Session
	err := s.q(ctx).Where("token_hash = ? AND expires_at > ?", tokenHash, ts(now)).Take(&se).Error
	if err != nil {
		return nil, fmt.Errorf("get session: %w", mapErr(err))
	}
	se.CreatedAt, se.ExpiresAt = utc(se.CreatedAt), utc(se.ExpiresAt)
	return &se, nil
}

func (s *gormStore) DeleteSession(ctx context.Context, tokenHash string) error {
	if err := s.q(ctx).Where("token_hash = ?", tokenHash).Delete(&Session{}).Error; err != nil {
		return fmt.Errorf("delete session: %w", mapErr(err))
	}
	return nil
}

func (s *gormStore) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	res := s.q(ctx).Where("expires_at <= ?", ts(now)).Delete(&Session{})
	if res.Error != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", mapErr(res.Error))
	}
	return res.RowsAffected, nil
}

func (s *gormStore) AddAuditEvent(ctx context.Context, e audit.Event) error {
	if err := s.q(ctx).Create(auditRowOf(e, s.now())).Error; err != nil {
		return fmt.Errorf("add audit event %s: %w", e.Action, mapErr(err))
	}
	return nil
}

func (s *gormStore) ListAuditEvents(ctx context.Context, q string, page Page) ([]audit.Event, error) {
	return s.FindAuditEvents(ctx, AuditFilter{Q: q}, page)
}

// ExpiringPerDay groups in SQL like IssuedPerDay; it reads only the
// not_after index range.
func (s *gormStore) ExpiringPerDay(ctx context.Context, from, to time.Time) (map[string]int64, error) {
	day := "substr(not_after, 1, 10)"
	if s.engine == enginePostgres {
		day = "to_char(not_after AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
	}
	var rows []struct {
		Day string
		N   int64
	}
	err := s.r(ctx).Model(&certificateRow{}).Select(day+" AS day, COUNT(*) AS n").
		Where("not_after >= ? AND not_after < ? AND revoked = ?", ts(from), ts(to), false).Group(day).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("count expiring certificates per day: %w", mapErr(err))
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.Day] = r.N
	}
	return out, nil
}
