package storage

import (
	"time"

	"gorm.io/gorm"
)

// Migration 0021_audit_seal adds audit_seals, the hash chain over the
// audit log (issue 23, internal/auditchain). seq is the chain position and
// the primary key, so two sealers cannot both write one link.
type auditSeal0021 struct {
	Seq        int64     `gorm:"primaryKey;autoIncrement:false"`
	SealedAt   time.Time `gorm:"not null"`
	AfterID    string    `gorm:"size:64;not null"`
	UptoID     string    `gorm:"size:64;not null"`
	EntryCount int       `gorm:"not null"`
	Digests    string    `gorm:"type:text;not null"`
	Hash       string    `gorm:"size:64;not null"`
	MAC        string    `gorm:"column:mac;size:64;not null"`
}

func (auditSeal0021) TableName() string { return "audit_seals" }

func init() {
	register("0021_audit_seal", func(db *gorm.DB) error {
		return db.AutoMigrate(&auditSeal0021{})
	})
}
