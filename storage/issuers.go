package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/certmint/certmint/ca"
	"github.com/certmint/certmint/ca/crl"
)

// IssuerStore keeps the CA's issuers (ca.IssuerStore) and what the
// console shows about them.
type IssuerStore interface {
	ca.IssuerStore
	// AssignIssuer records issuer as the signer of every certificate
	// that has none (rows from before issuers were recorded).
	AssignIssuer(ctx context.Context, issuer string) (int64, error)
	// ListRevokedBy is crl.Store's ListRevoked for one issuer's
	// certificates.
	ListRevokedBy(ctx context.Context, issuer string, notAfterSince time.Time) ([]crl.Revoked, error)
	// RecordBundleFetch notes that account fetched the bundle of roots
	// (fingerprints) at at; ListBundleFetches returns the last fetch of
	// each account, newest first.
	RecordBundleFetch(ctx context.Context, f BundleFetch) error
	ListBundleFetches(ctx context.Context, limit int) ([]BundleFetch, error)
}

// BundleFetch is an agent's last fetch of /roots/bundle.pem.
type BundleFetch struct {
	AccountID  string
	FetchedAt  time.Time
	RemoteAddr string
	Roots      []string // SHA-256 of each root it received
}

// bundleFetchRow is the bundle_fetches table.
type bundleFetchRow struct {
	AccountID  string    `gorm:"primaryKey;size:64"`
	FetchedAt  time.Time `gorm:"not null"`
	RemoteAddr string    `gorm:"size:64"`
	Roots      string    `gorm:"type:text"`
}

func (bundleFetchRow) TableName() string { return "bundle_fetches" }

// RecordBundleFetch is an upsert: one row per account, the last fetch.
func (s *gormStore) RecordBundleFetch(ctx context.Context, f BundleFetch) error {
	err := s.q(ctx).Exec(`INSERT INTO bundle_fetches (account_id, fetched_at, remote_addr, roots) VALUES (?, ?, ?, ?)
		ON CONFLICT (account_id) DO UPDATE SET fetched_at = excluded.fetched_at, remote_addr = excluded.remote_addr, roots = excluded.roots`,
		f.AccountID, ts(f.FetchedAt), f.RemoteAddr, strings.Join(f.Roots, ",")).Error
	if err != nil {
		return fmt.Errorf("record bundle fetch: %w", mapErr(err))
	}
	return nil
}

func (s *gormStore) ListBundleFetches(ctx context.Context, limit int) ([]BundleFetch, error) {
	var rows []bundleFetchRow
	if err := s.r(ctx).Order("fetched_at DESC").Limit(limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list bundle fetches: %w", mapErr(err))
	}
	out := make([]BundleFetch, len(rows))
	for i, r := range rows {
		out[i] = BundleFetch{AccountID: r.AccountID, FetchedAt: utc(r.FetchedAt), RemoteAddr: r.RemoteAddr}
		if r.Roots != "" {
			out[i].Roots = strings.Split(r.Roots, ",")
		}
	}
	return out, nil
}

// issuerRow is the ca_issuers table.
type issuerRow struct {
	ID         string `gorm:"primaryKey;size:64"`
	Role       string `gorm:"size:16;not null;index"`
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

func (issuerRow) TableName() string { return "ca_issuers" }

func fromIssuer(r ca.IssuerRecord, now time.Time) issuerRow {
	return issuerRow{ID: r.ID, Role: string(r.Role), State: string(r.State), ParentID: r.ParentID,
		CertPEM: string(r.CertPEM), CSRPEM: string(r.CSRPEM), KeyRef: r.KeyRef, KeyPEM: string(r.KeyPEM),
		CRLName: r.CRLName, ActivateAt: tsp(r.ActivateAt), CreatedAt: ts(r.CreatedAt), UpdatedAt: ts(now)}
}

func (r *issuerRow) toRecord() ca.IssuerRecord {
	rec := ca.IssuerRecord{ID: r.ID, Role: ca.Role(r.Role), State: ca.State(r.State), ParentID: r.ParentID,
		KeyRef: r.KeyRef, CRLName: r.CRLName, ActivateAt: utcp(r.ActivateAt), CreatedAt: utc(r.CreatedAt)}
	if r.CertPEM != "" {
		rec.CertPEM = []byte(r.CertPEM)
	}
	if r.CSRPEM != "" {
		rec.CSRPEM = []byte(r.CSRPEM)
	}
	if r.KeyPEM != "" {
		rec.KeyPEM = []byte(r.KeyPEM)
	}
	return rec
}

func (s *gormStore) ListIssuers(ctx context.Context) ([]ca.IssuerRecord, error) {
	var rows []issuerRow
	if err := s.q(ctx).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list CA issuers: %w", mapErr(err))
	}
	out := make([]ca.IssuerRecord, len(rows))
	for i := range rows {
		out[i] = rows[i].toRecord()
	}
	return out, nil
}

// ChangeIssuers applies a rotation in one transaction; every move is a
// conditional write, so of two replicas racing to switch, one wins and
// the other gets ca.ErrIssuerConflict.
func (s *gormStore) ChangeIssuers(ctx context.Context, add []ca.IssuerRecord, moves []ca.IssuerMove, certs map[string][]byte) error {
	now := s.now()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for _, r := range add {
			row := fromIssuer(r, now)
			if err := tx.Create(&row).Error; err != nil {
				return err
			}
		}
		for id, pem := range certs {
			res := tx.Model(&issuerRow{}).Where("id = ? AND (cert_pem = '' OR cert_pem IS NULL)", id).
				Updates(map[string]any{"cert_pem": string(pem), "updated_at": ts(now)})
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected != 1 {
				return ca.ErrIssuerConflict
			}
		}
		for _, m := range moves {
			res := tx.Model(&issuerRow{}).Where("id = ? AND state = ?", m.ID, string(m.From)).
				Updates(map[string]any{"state": string(m.To), "updated_at": ts(now)})
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected != 1 {
				return ca.ErrIssuerConflict
			}
		}
		return nil
	})
	if errors.Is(err, ca.ErrIssuerConflict) {
		return err
	}
	if err != nil {
		if errors.Is(mapErr(err), ErrConflict) {
			return ca.ErrIssuerConflict
		}
		return fmt.Errorf("change CA issuers: %w", mapErr(err))
	}
	return nil
}

func (s *gormStore) AssignIssuer(ctx context.Context, issuer string) (int64, error) {
	res := s.q(ctx).Model(&certificateRow{}).Where("issuer_id = ''").Update("issuer_id", issuer)
	if res.Error != nil {
		return 0, fmt.Errorf("assign certificates to issuer %s: %w", issuer, mapErr(res.Error))
	}
	return res.RowsAffected, nil
}

// ListRevokedBy is ListRevoked for the certificates one issuer signed:
// each intermediate's CRL lists only its own (RFC 5280 §5: a CRL speaks
// for its issuer).
func (s *gormStore) ListRevokedBy(ctx context.Context, issuer string, notAfterSince time.Time) ([]crl.Revoked, error) {
	var rows []certificateRow
	err := s.r(ctx).Model(&certificateRow{}).Select("id", "serial", "revoked_at", "revocation_reason").
		Where("revoked = ? AND not_after >= ? AND issuer_id = ?", true, ts(notAfterSince), issuer).Order("serial").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list revoked certificates of %s: %w", issuer, mapErr(err))
	}
	out := make([]crl.Revoked, len(rows))
	for i, r := range rows {
		out[i] = crl.Revoked{CertificateID: r.ID, Serial: r.Serial, RevokedAt: utcp(r.RevokedAt), Reason: r.RevocationReason}
	}
	return out, nil
}
