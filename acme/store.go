package acme

import (
	"context"
	"time"

	"github.com/certmint/certmint/acme/eab"
	"github.com/certmint/certmint/acme/revocation"
	"github.com/certmint/certmint/internal/audit"
)

// Store is everything the ACME server keeps, as the small interfaces its
// handlers declare below. Package storage implements it on SQLite and
// Postgres; handler tests use an in-memory fake. Implementations are safe
// for concurrent use by many goroutines and by several processes sharing
// one database: every state change is a conditional write decided by the
// store, never by a process-wide lock. Every method honours ctx. Errors
// wrap ErrNotFound, ErrConflict or ErrUnavailable where those apply.
type Store interface {
	NonceStore
	AccountStore
	EABStore
	OrderStore
	ChallengeStore
	CertificateStore
	revocation.Store

	// Shared reports whether several processes may use the store at once
	// (Postgres), so that nothing may be kept in one process's memory.
	Shared() bool
}

// NonceStore records which anti-replay nonces (RFC 8555 §6.5) were used,
// and keeps the nonce MAC key shared by every replica. Nonces themselves
// are minted without touching the store (they are MACed).
type NonceStore interface {
	// UseNonce records nonce as used until expires; ErrConflict if it was
	// used before, by this process or any other.
	UseNonce(ctx context.Context, nonce string, expires time.Time) error
	// GetSetting returns ErrNotFound for an unknown key.
	GetSetting(ctx context.Context, key string) (string, error)
	// InitSetting stores value under key unless the key exists, and
	// returns the value stored afterwards, so that racing replicas agree.
	InitSetting(ctx context.Context, key, value string) (string, error)
}

// AccountStore keeps accounts (RFC 8555 §7.3).
type AccountStore interface {
	// CreateAccount inserts a, filling in an empty ID and CreatedAt;
	// ErrConflict if its key thumbprint is taken.
	CreateAccount(ctx context.Context, a *Account) error
	GetAccount(ctx context.Context, id string) (*Account, error)
	GetAccountByThumbprint(ctx context.Context, thumbprint string) (*Account, error)
	// UpdateAccountContact replaces the contact list of a valid account.
	UpdateAccountContact(ctx context.Context, id string, contact []string) error
	// DeactivateAccount moves a valid account to deactivated (ErrConflict
	// if it is not valid).
	DeactivateAccount(ctx context.Context, id string) error
	// ChangeAccountKey swaps the key of account id from oldThumbprint to
	// the new one (RFC 8555 §7.3.5). ErrConflict if the account's key
	// changed meanwhile or the new key belongs to an account already.
	ChangeAccountKey(ctx context.Context, id, oldThumbprint, newThumbprint, newJWK string) error
	// ListOrderIDs pages the IDs of an account's orders, oldest first,
	// starting after the ID "after" ("" for the first page).
	ListOrderIDs(ctx context.Context, accountID, after string, limit int) ([]string, error)
}

// EABStore reads and binds external account binding keys (RFC 8555 §7.3.4).
type EABStore interface {
	// GetEABKey returns ErrNotFound for an unknown key ID.
	GetEABKey(ctx context.Context, id string) (*eab.Key, error)
	// BindEABKey records that accountID used the key. A single-use key
	// binds once (ErrConflict afterwards); a revoked key gives ErrConflict.
	BindEABKey(ctx context.Context, id, accountID string, at time.Time) error
	// UnbindEABKey undoes BindEABKey when the account could not be created.
	UnbindEABKey(ctx context.Context, id, accountID string) error
}

// OrderStore keeps orders and creates authorizations (RFC 8555 §7.4).
type OrderStore interface {
	// CreateOrder inserts o together with the new authorizations (and
	// their challenges) in one transaction. o.AuthzIDs lists every
	// authorization of the order, new ones and reused ones, in
	// identifier order.
	CreateOrder(ctx context.Context, o *Order, newAuthzs []Authorization) error
	// GetOrder returns the order with AuthzIDs filled in.
	GetOrder(ctx context.Context, id string) (*Order, error)
	// CreateAuthorization inserts a stand-alone authorization with its
	// challenges (pre-authorization, RFC 8555 §7.4.1).
	CreateAuthorization(ctx context.Context, a *Authorization) error
	// FindReusableAuthorization returns the valid authorization of the
	// account for the identifier that stays valid longest beyond
	// validUntil, or ErrNotFound.
	FindReusableAuthorization(ctx context.Context, accountID, typ, value string, wildcard bool, validUntil time.Time) (*Authorization, error)
	// CountPendingAuthorizations counts the account's pending
	// authorizations, for the cap on work one account may leave open.
	CountPendingAuthorizations(ctx context.Context, accountID string) (int64, error)
}

// ChallengeStore moves authorizations and challenges through their states
// (RFC 8555 §7.1.6, §7.5).
type ChallengeStore interface {
	// GetAuthorization returns the authorization with its challenges in
	// Position order.
	GetAuthorization(ctx context.Context, id string) (*Authorization, error)
	// GetChallenge returns a challenge and its authorization (with all of
	// the authorization's challenges).
	GetChallenge(ctx context.Context, id string) (*Challenge, *Authorization, error)
	// StartChallenge moves a pending challenge of a pending authorization
	// to processing (RFC 8555 §7.5.1). ErrConflict if either is not pending.
	StartChallenge(ctx context.Context, challengeID string) error
	// CompleteChallenge records a validation result in one transaction:
	// with failure nil the challenge and its authorization become valid
	// and every pending order whose authorizations are now all valid
	// becomes ready (RFC 8555 §7.1.6: certbot finalizes at once); with a
	// failure they become invalid and so does every pending order using
	// the authorization, with that problem. The challenge may be pending
	// or processing; ErrConflict if it already has a result.
	CompleteChallenge(ctx context.Context, challengeID string, failure *Problem, at time.Time) error
	// DeactivateAuthorization moves a pending or valid authorization to
	// deactivated (RFC 8555 §7.5.2); pending or ready orders that use it
	// become invalid.
	DeactivateAuthorization(ctx context.Context, id string) error
	// RecordDNSPersistMatch stores the record a dns-persist-01 challenge
	// matched (a second match of the challenge replaces the first) and,
	// when it sets persistUntil, brings the authorization's expiry forward
	// to it: the draft (§4.1 item 5) forbids relying on the record after
	// that time, and reuse goes by the expiry.
	RecordDNSPersistMatch(ctx context.Context, m DNSPersistMatch) error
	// ListProcessingChallenges returns up to limit challenges in
	// processing: after a crash their validation runs nowhere and must be
	// started again.
	ListProcessingChallenges(ctx context.Context, limit int) ([]Challenge, error)
}

// CertificateStore keeps issued certificates and ARI's replacement links.
type CertificateStore interface {
	// CompleteFinalize stores cert and the audit events given and moves
	// the order from ready to valid, in one transaction, so a certificate
	// exists exactly when its order says valid. ErrConflict if the serial
	// exists already (the caller picks a new serial and retries) or the
	// order is no longer ready.
	CompleteFinalize(ctx context.Context, orderID string, cert *Certificate, events ...audit.Event) error
	GetCertificate(ctx context.Context, id string) (*Certificate, error)
	GetCertificateBySerial(ctx context.Context, serialHex string) (*Certificate, error)
	// MarkReplaced records that order orderID replaces certificate certID
	// (RFC 9773 §5). ErrConflict if another order replaces it already,
	// unless that order has become invalid.
	MarkReplaced(ctx context.Context, certID, orderID string) error
	// ClearReplaced undoes MarkReplaced when the replacing order could not
	// be created.
	ClearReplaced(ctx context.Context, certID, orderID string) error
}
