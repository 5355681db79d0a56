package storage

import "time"

// Status values shared by ACME objects (RFC 8555 §7.1.6). They are plain
// strings so that storage stays free of ACME wire types.
const (
	StatusPending     = "pending"
	StatusProcessing  = "processing"
	StatusReady       = "ready"
	StatusValid       = "valid"
	StatusInvalid     = "invalid"
	StatusExpired     = "expired"
	StatusDeactivated = "deactivated"
	StatusRevoked     = "revoked"
)

// Account is an ACME account (RFC 8555 §7.1.2). KeyThumbprint is the
// RFC 7638 thumbprint of the account key, unique across accounts.
type Account struct {
	ID            string    `gorm:"primaryKey;size:64"`
	KeyThumbprint string    `gorm:"uniqueIndex;size:128;not null"`
	KeyJWK        string    `gorm:"type:text;not null"` // public JWK, JSON
	Status        string    `gorm:"size:16;not null;index"`
	Contact       string    `gorm:"type:text"` // JSON array of mailto: URIs
	TOSAgreed     bool      `gorm:"not null"`
	EABKeyID      string    `gorm:"size:64;index"` // external account binding key used, if any
	CreatedAt     time.Time `gorm:"not null;index"`
}

// Identifier is an ACME identifier (RFC 8555 §9.7.7): Type is "dns" or "ip".
type Identifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Order is an ACME order (RFC 8555 §7.1.3). Identifiers is the JSON array
// exactly as the client sent it, so it can be echoed back unchanged.
type Order struct {
	ID            string    `gorm:"primaryKey;size:64;index:idx_orders_account_id,priority:2"`
	AccountID     string    `gorm:"size:64;not null;index:idx_orders_account_id,priority:1"`
	Status        string    `gorm:"size:16;not null"` // partial index idx_orders_unfinished (0010)
	Expires       time.Time `gorm:"not null"`
	Identifiers   string    `gorm:"type:text;not null"` // JSON []Identifier as sent
	Names         string    `gorm:"type:text;not null"` // lowercase names, comma separated, for search
	NotBefore     *time.Time
	NotAfter      *time.Time
	Profile       string    `gorm:"size:64"`
	Error         string    `gorm:"type:text"` // JSON problem document, when invalid
	CertificateID string    `gorm:"size:64"`
	Replaces      string    `gorm:"size:255"` // ARI certificate ID this order replaces
	CreatedAt     time.Time `gorm:"not null"`

	// AuthzIDs lists the order's authorizations in identifier order. It is
	// kept in the order_authzs link table, not in this row.
	AuthzIDs []string `gorm:"-"`
}

// OrderAuthz links an order to one of its authorizations. An authorization
// may be shared by several orders when reuse is enabled.
type OrderAuthz struct {
	OrderID  string `gorm:"primaryKey;size:64"`
	AuthzID  string `gorm:"primaryKey;size:64;index"`
	Position int    `gorm:"not null"`
}

// Authorization is an ACME authorization (RFC 8555 §7.1.4). Value is the
// lowercase identifier without any "*." prefix; Wildcard says it had one.
type Authorization struct {
	ID         string      `gorm:"primaryKey;size:64"`
	AccountID  string      `gorm:"size:64;not null"` // partial indexes idx_authz_pending and idx_authz_reusable (0010)
	Type       string      `gorm:"size:8;not null"`
	Value      string      `gorm:"size:255;not null"`
	Wildcard   bool        `gorm:"not null"`
	Status     string      `gorm:"size:16;not null"`
	Expires    time.Time   `gorm:"not null"`
	PreAuth    bool        `gorm:"not null"` // created by newAuthz (RFC 8555 §7.4.1)
	CreatedAt  time.Time   `gorm:"not null"`
	Challenges []Challenge `gorm:"foreignKey:AuthzID"`
}

// Challenge is one way to prove control of an authorization's identifier
// (RFC 8555 §7.1.5, §8).
type Challenge struct {
	ID        string `gorm:"primaryKey;size:64"`
	AuthzID   string `gorm:"size:64;not null;index"`
	Type      string `gorm:"size:32;not null"`
	Token     string `gorm:"size:128;not null"`
	Status    string `gorm:"size:16;not null"`
	Validated *time.Time
	Error     string `gorm:"type:text"` // JSON problem document, when invalid
	Position  int    `gorm:"not null"`
}

// Certificate is an issued certificate. It is stored before it is returned
// to anyone; Serial (lowercase hex) is unique at the database level.
type Certificate struct {
	ID               string    `gorm:"primaryKey;size:64"`
	Serial           string    `gorm:"uniqueIndex;size:64;not null"`
	AccountID        string    `gorm:"size:64;not null;index"`
	OrderID          string    `gorm:"size:64;not null;index"`
	Names            string    `gorm:"type:text;not null"` // lowercase SANs, comma separated
	CommonName       string    `gorm:"size:255"`
	Profile          string    `gorm:"size:64"`
	KeyHash          string    `gorm:"size:64"` // SHA-256 of the SubjectPublicKeyInfo, hex
	NotBefore        time.Time `gorm:"not null"`
	NotAfter         time.Time `gorm:"not null;index"`
	DER              []byte    `gorm:"not null"`
	ChainPEM         string    `gorm:"type:text;not null"` // empty: built from DER and the CA when served
	Revoked          bool      `gorm:"not null;index"`
	RevokedAt        *time.Time
	RevocationReason int
	ARIID            string    `gorm:"size:255"` // RFC 9773 certificate identifier (looked up by serial)
	RenewNow         bool      `gorm:"not null"` // operator asked clients to renew (ARI)
	ReplacedBy       string    `gorm:"size:64"`  // order that replaces this certificate
	CreatedAt        time.Time `gorm:"not null;index"`
}
