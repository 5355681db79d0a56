package storage

import (
	"context"
	"database/sql"
	"fmt"
)

// MetricsStore answers the monitoring questions whose answers must agree
// across replicas, so they are read from the database rather than
// counted in one process.
type MetricsStore interface {
	// CertificateCounts counts every certificate ever issued by profile,
	// and the revoked ones by RFC 5280 reason code. Certificates are never
	// deleted, so both only grow: they are Prometheus counters.
	CertificateCounts(ctx context.Context) (issued map[string]int64, revoked map[int]int64, err error)
	// SQLPools are the connection pools, by name, for their statistics
	// (sql.DBStats). Callers must not run queries on them.
	SQLPools() map[string]*sql.DB
}

// CertificateCounts reads both counts in one grouped pass over the
// certificates.
func (s *gormStore) CertificateCounts(ctx context.Context) (map[string]int64, map[int]int64, error) {
	var rows []struct {
		Profile          string
		Revoked          bool
		RevocationReason int
		N                int64
	}
	err := s.r(ctx).Model(&certificateRow{}).
		Select("COALESCE(profile, '') AS profile, revoked, COALESCE(revocation_reason, 0) AS revocation_reason, COUNT(*) AS n").
		Group("profile, revoked, revocation_reason").Scan(&rows).Error
	if err != nil {
		return nil, nil, fmt.Errorf("count certificates by profile and revocation: %w", mapErr(err))
	}
	issued, revoked := map[string]int64{}, map[int]int64{}
	for _, r := range rows {
		issued[r.Profile] += r.N
		if r.Revoked {
			revoked[r.RevocationReason] += r.N
		}
	}
	return issued, revoked, nil
}

// SQLPools names the writing pool "certmint" and, on a SQLite file, the
// separate read pool "certmint_read".
func (s *gormStore) SQLPools() map[string]*sql.DB {
	out := map[string]*sql.DB{}
	if db, err := s.db.DB(); err == nil {
		out["certmint"] = db
	}
	if s.rd != nil && s.rd != s.db {
		if db, err := s.rd.DB(); err == nil {
			out["certmint_read"] = db
		}
	}
	return out
}
