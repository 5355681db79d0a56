// Package storage keeps certmint's state in a SQL database through gorm:
// an embedded SQLite file by default, Postgres for production and for
// several replicas. gorm never leaks out of this package: callers see the
// Store interface, plain structs and the sentinel errors below.
package storage

import (
	"context"
	"errors"
	"time"
)

var (
	// ErrNotFound is returned when the requested row does not exist.
	ErrNotFound = errors.New("storage: not found")
	// ErrConflict is returned when a compare-and-set write found the row in
	// another state than expected, or a unique value already exists.
	ErrConflict = errors.New("storage: conflict")
	// ErrUnavailable wraps failures to reach the database (connection
	// refused, timeouts), so callers can answer "try again later".
	ErrUnavailable = errors.New("storage: database unavailable")
)

// Store is everything certmint keeps. Implementations are safe for
// concurrent use by many goroutines and by several processes sharing one
// database; every state change is a conditional write decided by the
// database, never by a process-wide lock. Every method honours ctx.
type Store interface {
	NonceStore
	SettingStore
	AccountStore
	OrderStore
	CertificateStore
	LeaseStore
	RenewalStore
	EABStore
	LimitStore
	ConsoleStore
	CRLStore
	RateLimitStore
	DNSPersistStore

	// Shared reports whether several processes may use the database at
	// once (Postgres), so that nothing may be kept in one process's memory;
	// the embedded SQLite file belongs to one server process.
	Shared() bool
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the connection pool.
	Close() error
}

// NonceStore records which anti-replay nonces (RFC 8555 §6.5) were used.
// Nonces themselves are minted without touching the database (they are
// MACed); only their single use is recorded here.
type NonceStore interface {
	// UseNonce records nonce as used until expires. It returns ErrConflict
	// if the nonce was used before, by this process or any other.
	UseNonce(ctx context.Context, nonce string, expires time.Time) error
}

// SettingStore keeps small cluster-wide values such as the nonce MAC key.
type SettingStore interface {
	// GetSetting returns ErrNotFound for an unknown key.
	GetSetting(ctx context.Context, key string) (string, error)
	// InitSetting stores value under key unless the key exists, and returns
	// the value that is stored afterwards, so that racing replicas agree.
	InitSetting(ctx context.Context, key, value string) (string, error)
}

// AccountStore keeps ACME accounts (RFC 8555 §7.3).
type AccountStore interface {
	// CreateAccount inserts a; ErrConflict if its key thumbprint is taken.
	CreateAccount(ctx context.Context, a *Account) error
	GetAccount(ctx context.Context, id string) (*Account, error)
	GetAccountByThumbprint(ctx context.Context, thumbprint string) (*Account, error)
	// UpdateAccountContact replaces the contact list (JSON) of a valid account.
	UpdateAccountContact(ctx context.Context, id, contactJSON string) error
	// DeactivateAccount moves a valid account to deactivated (ErrConflict
	// if it is not valid).
	DeactivateAccount(ctx context.Context, id string) error
	// ChangeAccountKey swaps the key of account id from oldThumbprint to the
	// new one (RFC 8555 §7.3.5). ErrConflict if the account's key changed
	// meanwhile or the new key belongs to an account already.
	ChangeAccountKey(ctx context.Context, id, oldThumbprint, newThumbprint, newJWK string) error
	// ListAccounts pages accounts newest first; q filters on ID or contact.
	ListAccounts(ctx context.Context, q string, page Page) ([]Account, error)
	CountAccounts(ctx context.Context) (int64, error)
}

// OrderStore keeps orders, authorizations and challenges, and moves them
// through the RFC 8555 §7.1.6 state machine.
type OrderStore interface {
	// CreateOrder inserts o together with the new authorizations (and their
	// challenges) in one transaction. o.AuthzIDs lists every authorization
	// of the order, new ones and reused ones, in identifier order.
	CreateOrder(ctx context.Context, o *Order, newAuthzs []Authorization) error
	// GetOrder returns the order with AuthzIDs filled in.
	GetOrder(ctx context.Context, id string) (*Order, error)
	// ListOrderIDs pages the IDs of an account's orders, oldest first,
	// starting after the ID "after" ("" for the first page).
	ListOrderIDs(ctx context.Context, accountID, after string, limit int) ([]string, error)
	// ListOrders pages orders for the console, newest first, optionally
	// filtered by status and account.
	ListOrders(ctx context.Context, f OrderFilter, page Page) ([]Order, error)

	// CreateAuthorization inserts a stand-alone authorization with its
	// challenges (pre-authorization, RFC 8555 §7.4.1).
	CreateAuthorization(ctx context.Context, a *Authorization) error
	// GetAuthorization returns the authorization with its challenges,
	// ordered by Position.
	GetAuthorization(ctx context.Context, id string) (*Authorization, error)
	// FindReusableAuthorization returns a valid, unexpired authorization of
	// the account for the identifier that stays valid after notAfter, or
	// ErrNotFound.
	FindReusableAuthorization(ctx context.Context, accountID, typ, value string, wildcard bool, validUntil time.Time) (*Authorization, error)
	// GetChallenge returns a challenge and its authorization (with all of
	// the authorization's challenges).
	GetChallenge(ctx context.Context, id string) (*Challenge, *Authorization, error)
	// StartChallenge moves a pending challenge of a pending authorization to
	// processing (RFC 8555 §7.5.1). ErrConflict if either is not pending.
	StartChallenge(ctx context.Context, challengeID string) error
	// CompleteChallenge records a validation result in one transaction:
	// the challenge becomes valid or invalid (with problemJSON), and so does
	// its authorization. On success every pending order whose
	// authorizations are now all valid becomes ready; on failure every
	// pending order using the authorization becomes invalid with
	// problemJSON. The challenge may be pending (a validation answered
	// before it was marked processing) or processing; ErrConflict if it
	// already has a result.
	CompleteChallenge(ctx context.Context, challengeID string, valid bool, problemJSON string, at time.Time) error
	// DeactivateAuthorization moves a pending or valid authorization to
	// deactivated (RFC 8555 §7.5.2); pending or ready orders that use it
	// become invalid.
	DeactivateAuthorization(ctx context.Context, id string) error

	// BeginFinalize moves a ready order to processing (ErrConflict if it is
	// not ready), so that only one finalize signs.
	BeginFinalize(ctx context.Context, orderID string) error
	// CompleteFinalize stores cert (and the audit events given) and moves
	// the order from ready or processing to valid, in one transaction, so
	// a certificate exists exactly when its order says valid. ErrConflict
	// if the serial exists already (the caller picks a new serial and
	// retries) or the order is no longer ready or processing.
	CompleteFinalize(ctx context.Context, orderID string, cert *Certificate, audit ...AuditEvent) error
	// FailFinalize moves a processing order to ready (retryable=true) or to
	// invalid with problemJSON.
	FailFinalize(ctx context.Context, orderID string, retryable bool, problemJSON string) error

	// ExpireStale marks pending/ready orders and pending authorizations
	// whose Expires is before now as invalid/expired, deletes used nonces
	// whose expiry passed, and returns how many rows it changed.
	ExpireStale(ctx context.Context, now time.Time) (int64, error)
	// RecoverProcessing returns orders left in processing by a crash to
	// ready, so the client's retried finalize signs; it returns how many.
	RecoverProcessing(ctx context.Context, olderThan time.Time) (int64, error)
}

// OrderFilter narrows ListOrders. Empty fields do not filter.
type OrderFilter struct {
	Status    string
	AccountID string
	Query     string // matches a name of the order or its ID
}

// CertificateStore keeps issued certificates and their revocation state.
type CertificateStore interface {
	GetCertificate(ctx context.Context, id string) (*Certificate, error)
	GetCertificateBySerial(ctx context.Context, serialHex string) (*Certificate, error)
	// RevokeCertificate marks the certificate revoked with an RFC 5280
	// reason code; ErrConflict if it is revoked already.
	RevokeCertificate(ctx context.Context, id string, reason int, at time.Time) error
	// ListCertificates pages certificates newest first.
	ListCertificates(ctx context.Context, f CertFilter, page Page) ([]Certificate, error)
	// CountCertificates counts certificates matching f.
	CountCertificates(ctx context.Context, f CertFilter) (int64, error)
	// CertificateStats counts certificates by state at now, in one pass.
	CertificateStats(ctx context.Context, now time.Time) (CertificateStats, error)
	// ListRevoked returns every revoked certificate that has not expired
	// before notAfterSince, for the CRL.
	ListRevoked(ctx context.Context, notAfterSince time.Time) ([]Certificate, error)
	// IssuedPerDay counts certificates by UTC day of CreatedAt since since.
	IssuedPerDay(ctx context.Context, since time.Time) (map[string]int64, error)
}

// CertFilter narrows certificate lists. Empty fields do not filter. The
// state filters are evaluated at Now.
type CertFilter struct {
	Query     string // a name, a serial (hex) or an account ID
	AccountID string
	State     string        // "", "valid", "expiring", "expired", "revoked"
	Within    time.Duration // for "expiring": NotAfter before Now+Within
	Now       time.Time
}

// Page is a keyset page: Limit rows after the row with ID After (in the
// list's order); After "" is the first page. Offset paging is avoided so a
// page stays fast with millions of rows.
type Page struct {
	After string
	Limit int
}

// LeaseStore elects one replica for cluster-wide background work.
type LeaseStore interface {
	// AcquireLease takes or extends the named lease for holder until
	// now+ttl. It returns true if holder has the lease afterwards.
	AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
}
