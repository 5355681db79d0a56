package storage

import (
	"time"

	"gorm.io/gorm"
)

// Migration 0002_console adds the admin console's tables: users, sessions,
// sign-in throttling and the audit log. Like 0001 it migrates frozen
// copies of the models.
func init() { register("0002_console", migrateConsole0002) }

type console0002AdminUser struct {
	ID           string    `gorm:"primaryKey;size:64"`
	Username     string    `gorm:"uniqueIndex;size:128;not null"`
	PasswordHash string    `gorm:"size:255;not null"`
	CreatedAt    time.Time `gorm:"not null"`
	LastLoginAt  *time.Time
}

func (console0002AdminUser) TableName() string { return "admin_users" }

type console0002Session struct {
	TokenHash  string    `gorm:"primaryKey;size:64"`
	Username   string    `gorm:"size:128;not null;index"`
	CSRFToken  string    `gorm:"size:64;not null"`
	RemoteAddr string    `gorm:"size:64"`
	CreatedAt  time.Time `gorm:"not null"`
	ExpiresAt  time.Time `gorm:"not null;index"`
}

func (console0002Session) TableName() string { return "sessions" }

type console0002LoginThrottle struct {
	Username    string    `gorm:"primaryKey;size:128"`
	Failures    int       `gorm:"not null"`
	LastFailure time.Time `gorm:"not null"`
	LockedUntil *time.Time
}

func (console0002LoginThrottle) TableName() string { return "login_throttles" }

type console0002AuditEvent struct {
	ID         string    `gorm:"primaryKey;size:64"`
	At         time.Time `gorm:"not null;index"`
	Actor      string    `gorm:"size:128;not null;index"`
	Action     string    `gorm:"size:64;not null;index"`
	Target     string    `gorm:"size:255;index"`
	Detail     string    `gorm:"type:text"`
	RemoteAddr string    `gorm:"size:64"`
}

func (console0002AuditEvent) TableName() string { return "audit_events" }

func migrateConsole0002(tx *gorm.DB) error {
	return tx.AutoMigrate(&console0002AdminUser{}, &console0002Session{},
		&console0002LoginThrottle{}, &console0002AuditEvent{})
}
