package storage

import (
	"time"

	"gorm.io/gorm"
)

// Migration 0001_core creates the initial schema. It migrates its own
// copies of the models (as they were when it was written), so that later
// changes to models.go never rewrite what this migration did; a schema
// change is a new migration file.
func init() { register("0001_core", migrateCore0001) }

type core0001Account struct {
	ID            string    `gorm:"primaryKey;size:64"`
	KeyThumbprint string    `gorm:"uniqueIndex;size:128;not null"`
	KeyJWK        string    `gorm:"type:text;not null"`
	Status        string    `gorm:"size:16;not null;index"`
	Contact       string    `gorm:"type:text"`
	TOSAgreed     bool      `gorm:"not null"`
	EABKeyID      string    `gorm:"size:64;index"`
	CreatedAt     time.Time `gorm:"not null;index"`
}

func (core0001Account) TableName() string { return "accounts" }

// core0001Order adds processing_at, which is not in Order: BeginFinalize
// stamps it so that RecoverProcessing only resets orders whose finalize
// started long ago, never one being signed right now. The extra
// (account_id, id) index serves ListOrderIDs' keyset paging.
type core0001Order struct {
	ID            string    `gorm:"primaryKey;size:64;index:idx_orders_account_id,priority:2"`
	AccountID     string    `gorm:"size:64;not null;index:idx_orders_account,priority:1;index:idx_orders_account_id,priority:1"`
	Status        string    `gorm:"size:16;not null;index"`
	Expires       time.Time `gorm:"not null;index"`
	Identifiers   string    `gorm:"type:text;not null"`
	Names         string    `gorm:"type:text;not null"`
	NotBefore     *time.Time
	NotAfter      *time.Time
	Profile       string    `gorm:"size:64"`
	Error         string    `gorm:"type:text"`
	CertificateID string    `gorm:"size:64"`
	Replaces      string    `gorm:"size:255;index"`
	CreatedAt     time.Time `gorm:"not null;index:idx_orders_account,priority:2;index"`
	ProcessingAt  *time.Time
}

func (core0001Order) TableName() string { return "orders" }

type core0001OrderAuthz struct {
	OrderID  string                 `gorm:"primaryKey;size:64"`
	AuthzID  string                 `gorm:"primaryKey;size:64;index"`
	Position int                    `gorm:"not null"`
	Order    *core0001Order         `gorm:"foreignKey:OrderID;constraint:OnDelete:CASCADE"`
	Authz    *core0001Authorization `gorm:"foreignKey:AuthzID;constraint:OnDelete:CASCADE"`
}

func (core0001OrderAuthz) TableName() string { return "order_authzs" }

type core0001Authorization struct {
	ID        string    `gorm:"primaryKey;size:64"`
	AccountID string    `gorm:"size:64;not null;index:idx_authz_reuse,priority:1"`
	Type      string    `gorm:"size:8;not null;index:idx_authz_reuse,priority:2"`
	Value     string    `gorm:"size:255;not null;index:idx_authz_reuse,priority:3"`
	Wildcard  bool      `gorm:"not null"`
	Status    string    `gorm:"size:16;not null;index"`
	Expires   time.Time `gorm:"not null;index"`
	PreAuth   bool      `gorm:"not null"`
	CreatedAt time.Time `gorm:"not null"`
}

func (core0001Authorization) TableName() string { return "authorizations" }

type core0001Challenge struct {
	ID        string `gorm:"primaryKey;size:64"`
	AuthzID   string `gorm:"size:64;not null;index"`
	Type      string `gorm:"size:32;not null"`
	Token     string `gorm:"size:128;not null"`
	Status    string `gorm:"size:16;not null"`
	Validated *time.Time
	Error     string                 `gorm:"type:text"`
	Position  int                    `gorm:"not null"`
	Authz     *core0001Authorization `gorm:"foreignKey:AuthzID;constraint:OnDelete:CASCADE"`
}

func (core0001Challenge) TableName() string { return "challenges" }

type core0001Certificate struct {
	ID               string    `gorm:"primaryKey;size:64"`
	Serial           string    `gorm:"uniqueIndex;size:64;not null"`
	AccountID        string    `gorm:"size:64;not null;index"`
	OrderID          string    `gorm:"size:64;not null;index"`
	Names            string    `gorm:"type:text;not null"`
	CommonName       string    `gorm:"size:255;index"`
	Profile          string    `gorm:"size:64"`
	KeyHash          string    `gorm:"size:64;index"`
	NotBefore        time.Time `gorm:"not null"`
	NotAfter         time.Time `gorm:"not null;index"`
	DER              []byte    `gorm:"not null"`
	ChainPEM         string    `gorm:"type:text;not null"`
	Revoked          bool      `gorm:"not null;index"`
	RevokedAt        *time.Time
	RevocationReason int
	ARIID            string    `gorm:"size:255;index"`
	RenewNow         bool      `gorm:"not null"`
	ReplacedBy       string    `gorm:"size:64"`
	CreatedAt        time.Time `gorm:"not null;index"`
}

func (core0001Certificate) TableName() string { return "certificates" }

type core0001UsedNonce struct {
	Nonce   string    `gorm:"primaryKey;size:128"`
	Expires time.Time `gorm:"not null;index"`
}

func (core0001UsedNonce) TableName() string { return "used_nonces" }

type core0001Setting struct {
	Name  string `gorm:"primaryKey;size:128"`
	Value string `gorm:"type:text;not null"`
}

func (core0001Setting) TableName() string { return "settings" }

type core0001Lease struct {
	Name      string    `gorm:"primaryKey;size:128"`
	Holder    string    `gorm:"size:255;not null"`
	ExpiresAt time.Time `gorm:"not null"`
}

func (core0001Lease) TableName() string { return "leases" }

func migrateCore0001(tx *gorm.DB) error {
	return tx.AutoMigrate(
		&core0001Account{},
		&core0001Order{},
		&core0001Authorization{},
		&core0001OrderAuthz{},
		&core0001Challenge{},
		&core0001Certificate{},
		&core0001UsedNonce{},
		&core0001Setting{},
		&core0001Lease{},
	)
}
