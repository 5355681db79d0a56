package acme

import (
	"errors"
	"time"
)

// The ACME model: the objects of RFC 8555 §7.1 as the server works with
// them. They are plain Go values, owned by this package; package storage
// maps them to its tables, and the wire types in wire.go are what clients
// see. Keeping the three apart lets a column change without touching the
// protocol, and lets handler tests run on an in-memory Store.

// Status values of ACME objects (RFC 8555 §7.1.6).
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

// Errors every Store implementation returns, wrapped, so that handlers can
// tell "no such object" and "someone else changed it" from a failure.
var (
	// ErrNotFound: the requested object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a compare-and-set write found the object in another
	// state than expected, or a unique value exists already.
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: the database cannot be reached; answer "try later".
	ErrUnavailable = errors.New("database unavailable")
)

// Identifier is an ACME identifier (RFC 8555 §9.7.7): Type is "dns" or
// "ip". It is also the wire form, which is the same two fields.
type Identifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Account is an ACME account (RFC 8555 §7.1.2). KeyThumbprint is the
// RFC 7638 thumbprint of the account key, unique across accounts.
type Account struct {
	ID            string
	KeyThumbprint string
	KeyJWK        string // the public JWK, JSON, as the key's own encoding
	Status        string
	Contact       []string // mailto: URIs
	TOSAgreed     bool
	EABKeyID      string // external account binding key used, if any
	// Workload is the SPIFFE ID path ("/payments/sender") the EAB key bound
	// the account to when it registered; "" for none. Set once, at
	// registration: a key rollover (RFC 8555 §7.3.5) keeps it.
	Workload  string
	CreatedAt time.Time
}

// Order is an ACME order (RFC 8555 §7.1.3).
type Order struct {
	ID          string
	AccountID   string
	Status      string
	Expires     time.Time
	Identifiers []Identifier // exactly as the client sent them, to echo back
	Names       []string     // normalized names (lowercase, "*." kept), for search
	NotBefore   *time.Time
	NotAfter    *time.Time
	Profile     string
	Error       *Problem // why the order is invalid
	// CertificateID is set once the order is valid.
	CertificateID string
	Replaces      string // ARI certificate ID this order replaces (RFC 9773 §5)
	CreatedAt     time.Time
	// AuthzIDs lists the order's authorizations in identifier order.
	AuthzIDs []string
}

// Authorization is an ACME authorization (RFC 8555 §7.1.4). Value is the
// lowercase identifier without any "*." prefix; Wildcard says it had one.
type Authorization struct {
	ID         string
	AccountID  string
	Type       string
	Value      string
	Wildcard   bool
	Status     string
	Expires    time.Time
	PreAuth    bool // created by newAuthz (RFC 8555 §7.4.1)
	CreatedAt  time.Time
	Challenges []Challenge // in Position order
}

// Identifier returns the authorization's identifier as the RFC puts it in
// an authorization object: without the wildcard prefix (RFC 8555 §7.1.4).
func (a *Authorization) Identifier() Identifier {
	return Identifier{Type: a.Type, Value: a.Value}
}

// Challenge is one way to prove control of an authorization's identifier
// (RFC 8555 §7.1.5, §8).
type Challenge struct {
	ID        string
	AuthzID   string
	Type      string
	Token     string
	Status    string
	Validated *time.Time
	Error     *Problem // why validation failed
	Position  int
}

// Certificate is an issued certificate. It is stored before it is returned
// to anyone; Serial (lowercase hex) is unique.
type Certificate struct {
	ID               string
	Serial           string
	AccountID        string
	OrderID          string
	Names            []string // lowercase SANs
	CommonName       string
	Profile          string
	KeyHash          string // SHA-256 of the SubjectPublicKeyInfo, hex
	NotBefore        time.Time
	NotAfter         time.Time
	DER              []byte
	ChainPEM         string // empty: built from DER and the CA when served
	Revoked          bool
	RevokedAt        *time.Time
	RevocationReason int
	ARIID            string // RFC 9773 certificate identifier
	RenewNow         bool   // an operator asked clients to renew (ARI)
	ReplacedBy       string // the order that replaces this certificate
	CreatedAt        time.Time
	IssuerID         string // hex SKI of the intermediate that signed it (its AKI)
	Identity         string // the SPIFFE ID of its URI SAN ("" for none)
}

// DNSPersistMatch is the _validation-persist TXT record that satisfied a
// dns-persist-01 challenge (draft-ietf-acme-dns-persist §4.2), kept so
// that an operator sees which published record an authorization rests on.
type DNSPersistMatch struct {
	ChallengeID  string
	AuthzID      string
	Name         string // e.g. _validation-persist.svc.internal
	Record       string
	PersistUntil *time.Time
	CreatedAt    time.Time
}
