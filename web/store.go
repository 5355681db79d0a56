package web

import (
	"context"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/acme/eab"
	"github.com/certmint/certmint/acme/revocation"
	"github.com/certmint/certmint/storage"
)

// Store is what the console reads and changes. The lists, users,
// sessions and audit log are storage's console interfaces; the single
// ACME objects are read as the ACME model; revocation goes through
// revocation.Revoker, as it does over ACME. storage.Store has all of it.
type Store interface {
	storage.ReportStore
	storage.EABStore
	storage.ConsoleStore
	storage.ConsoleTeamStore
	storage.InventoryStore
	storage.WebhookStore
	storage.AuditSealStore
	revocation.Store

	GetAccount(ctx context.Context, id string) (*acme.Account, error)
	// DeactivateAccount moves a valid account to deactivated (RFC 8555
	// §7.3.6); ErrConflict if it is not valid.
	DeactivateAccount(ctx context.Context, id string) error
	GetOrder(ctx context.Context, id string) (*acme.Order, error)
	GetAuthorization(ctx context.Context, id string) (*acme.Authorization, error)
	GetCertificate(ctx context.Context, id string) (*acme.Certificate, error)
	GetEABKey(ctx context.Context, id string) (*eab.Key, error)
	// DNSPersistMatches returns the dns-persist-01 records that the given
	// authorizations' challenges matched, keyed by challenge ID.
	DNSPersistMatches(ctx context.Context, authzIDs []string) (map[string]acme.DNSPersistMatch, error)
}
