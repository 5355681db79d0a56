package storage

import (
	"time"

	"gorm.io/gorm"
)

// Migration 0014 adds the record that satisfied each dns-persist-01
// validation (draft-ietf-acme-dns-persist), so the console can show which
// published record an authorization rests on. A row of its own, keyed by
// the challenge, keeps the challenges table and its hot writes unchanged.
func init() { register("0014_dns_persist", migrateDNSPersist0014) }

type dnsPersist0014Match struct {
	ChallengeID  string `gorm:"primaryKey;size:64"`
	AuthzID      string `gorm:"size:64;not null;index:idx_dns_persist_authz"`
	Name         string `gorm:"size:300;not null"`
	Record       string `gorm:"type:text;not null"`
	PersistUntil *time.Time
	CreatedAt    time.Time `gorm:"not null"`
}

func (dnsPersist0014Match) TableName() string { return "dns_persist_matches" }

func migrateDNSPersist0014(tx *gorm.DB) error {
	return tx.AutoMigrate(&dnsPersist0014Match{})
}
