package storage

import (
	"time"

	"gorm.io/gorm"
)

// Migration 0012_ca_issuers records the CA's issuers in the database, so
// every replica signs with the same intermediate and sees a rotation made
// elsewhere, and records which issuer signed each certificate, so its
// revocation goes to that issuer's CRL. Rows from before are assigned to
// the first intermediate when the server records its issuers.
func init() { register("0012_ca_issuers", migrateIssuers0012) }

type issuer0012 struct {
	ID         string `gorm:"primaryKey;size:64"`
	Role       string `gorm:"size:16;not null"`
	State      string `gorm:"size:16;not null;index"`
	ParentID   string `gorm:"size:64"`
	CertPEM    string `gorm:"type:text"`
	CSRPEM     string `gorm:"column:csr_pem;type:text"`
	KeyRef     string `gorm:"type:text"`
	KeyPEM     string `gorm:"type:text"`
	CRLName    string `gorm:"column:crl_name;size:64"`
	ActivateAt *time.Time
	CreatedAt  time.Time `gorm:"not null"`
	UpdatedAt  time.Time `gorm:"not null"`
}

func (issuer0012) TableName() string { return "ca_issuers" }

type certIssuer0012 struct {
	IssuerID string `gorm:"size:64;not null;default:''"`
}

func (certIssuer0012) TableName() string { return "certificates" }

// bundleFetch0012 is the last fetch of /roots/bundle.pem per ACME
// account, as agents report it, for the console's CA page.
type bundleFetch0012 struct {
	AccountID  string    `gorm:"primaryKey;size:64"`
	FetchedAt  time.Time `gorm:"not null"`
	RemoteAddr string    `gorm:"size:64"`
	Roots      string    `gorm:"type:text"` // SHA-256 of each root served, comma separated
}

func (bundleFetch0012) TableName() string { return "bundle_fetches" }

func migrateIssuers0012(tx *gorm.DB) error {
	if err := tx.AutoMigrate(&issuer0012{}, &bundleFetch0012{}); err != nil {
		return err
	}
	return tx.Migrator().AddColumn(&certIssuer0012{}, "IssuerID")
}
