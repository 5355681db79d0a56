// Package storage keeps certmint's state in a SQL database through gorm:
// an embedded SQLite file by default, Postgres for production and for
// several replicas. gorm never leaks out of this package: callers see the
// Store interface, plain structs and the sentinel errors below.
package storage

import (
	"context"
	"time"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/acme/ratelimit"
	"github.com/certmint/certmint/ca/crl"
)

// The store's sentinel errors are the ones the ACME model declares for
// every store (acme.ErrNotFound ...), so that the console and the ACME
// handlers test one set of values.
var (
	// ErrNotFound is returned when the requested row does not exist.
	ErrNotFound = acme.ErrNotFound
	// ErrConflict is returned when a compare-and-set write found the row in
	// another state than expected, or a unique value already exists.
	ErrConflict = acme.ErrConflict
	// ErrUnavailable wraps failures to reach the database (connection
	// refused, timeouts), so callers can answer "try again later".
	ErrUnavailable = acme.ErrUnavailable
)

// Store is everything certmint keeps. Most of it is declared by the
// packages that use it (acme.Store, crl.Store, ratelimit.Store); what is
// declared here serves the console, the command line and housekeeping.
// Implementations are safe for concurrent use by many goroutines and by
// several processes sharing one database; every state change is a
// conditional write decided by the database, never by a process-wide
// lock. Every method honours ctx.
type Store interface {
	acme.Store
	crl.Store
	ratelimit.Store
	ReportStore
	EABStore
	ConsoleStore
	ConsoleTeamStore
	LeaseStore
	MetricsStore
	DNSPersistStore
	InventoryStore
	WebhookStore
	IssuerStore
	AuditSealStore

	// ExpireStale marks pending/ready orders and pending authorizations
	// whose Expires is before now as invalid/expired, deletes used nonces
	// whose expiry passed, and returns how many rows it changed.
	ExpireStale(ctx context.Context, now time.Time) (int64, error)
	// Ping checks that the database answers and accepts writes.
	Ping(ctx context.Context) error
	// Close releases the connection pool.
	Close() error
}

// ReportStore lists and counts the ACME objects for the console and the
// command line, and carries out the operator's renew-now (RFC 9773).
type ReportStore interface {
	// ListAccounts pages accounts newest first; q filters on ID, contact
	// or workload identity (its path, or the whole SPIFFE ID).
	ListAccounts(ctx context.Context, q string, page Page) ([]acme.Account, error)
	CountAccounts(ctx context.Context) (int64, error)
	// ListOrders pages orders newest first, without AuthzIDs.
	ListOrders(ctx context.Context, f OrderFilter, page Page) ([]acme.Order, error)
	// ListCertificates pages certificates newest first.
	ListCertificates(ctx context.Context, f CertFilter, page Page) ([]acme.Certificate, error)
	// CountCertificates counts certificates matching f.
	CountCertificates(ctx context.Context, f CertFilter) (int64, error)
	// CertificateStats counts certificates by state at now, in one pass.
	CertificateStats(ctx context.Context, now time.Time) (CertificateStats, error)
	// IssuedPerDay counts certificates by UTC day of CreatedAt since since.
	IssuedPerDay(ctx context.Context, since time.Time) (map[string]int64, error)
	// ExpiringPerDay counts unrevoked certificates by UTC day of NotAfter
	// in [from, to), for the console's expiry timeline.
	ExpiringPerDay(ctx context.Context, from, to time.Time) (map[string]int64, error)
	// SetRenewNow asks clients to renew every unexpired, unrevoked
	// certificate matching f now (the ARI window moves into the past);
	// it returns how many were marked. An empty filter is refused.
	SetRenewNow(ctx context.Context, f RenewFilter) (int64, error)
}

// OrderFilter narrows ListOrders. Empty fields do not filter.
type OrderFilter struct {
	Status    string
	AccountID string
	Query     string // matches a name of the order or its ID
}

// CertFilter narrows certificate lists. Empty fields do not filter. The
// state filters are evaluated at Now.
type CertFilter struct {
	Query     string // a name, a SPIFFE ID or path (any query with a "/"), a serial (hex) or an account ID
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

// InventoryStore reads the fleet inventory: one row per certificate
// lineage, kept current as certificates are issued (lineage.go).
type InventoryStore interface {
	// ListLineages pages lineages newest first, their state taken at f.Now.
	ListLineages(ctx context.Context, f LineageFilter, page Page) ([]Lineage, error)
	// CountLineages counts the lineages matching f.
	CountLineages(ctx context.Context, f LineageFilter) (int64, error)
	// CountOverdue counts lineages past their renewal window, unexpired.
	CountOverdue(ctx context.Context, now time.Time) (int64, error)
}

// LeaseStore elects one replica for cluster-wide background work.
type LeaseStore interface {
	// AcquireLease takes or extends the named lease for holder until
	// now+ttl. It returns true if holder has the lease afterwards.
	AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
}
