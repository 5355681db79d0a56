package storage

import (
	"time"

	"gorm.io/gorm"
)

// Migration 0004_crl adds CRL publishing's shared state: named counters
// (the CRL number, RFC 5280 §5.2.3) and the newest signed CRL per issuer,
// so that every replica serves the same list and numbers only grow.
func init() { register("0004_crl", migrateCRL0004) }

type crl0004Counter struct {
	Name  string `gorm:"primaryKey;size:128"`
	Value int64  `gorm:"not null"`
}

func (crl0004Counter) TableName() string { return "counters" }

type crl0004CRL struct {
	Issuer     string    `gorm:"primaryKey;size:128"`
	Number     int64     `gorm:"not null"`
	ThisUpdate time.Time `gorm:"not null"`
	NextUpdate time.Time `gorm:"not null"`
	State      string    `gorm:"size:128;not null"`
	DER        []byte    `gorm:"column:der"`
}

func (crl0004CRL) TableName() string { return "crls" }

func migrateCRL0004(tx *gorm.DB) error {
	return tx.AutoMigrate(&crl0004Counter{}, &crl0004CRL{})
}
