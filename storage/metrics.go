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

// CertificateCounts reads both counts in one pass over the certificates.
func (s *gormStore) CertificateCounts(ctx context.Context) (map[string]int64, map[int]int64, error) {
	rows, err := s.r(ctx).Raw(`SELECT profile, revoked, revocation_reason, COUNT(*) FROM certificates
		GROUP BY profile, revoked, revocation_reason`).Rows()
	if err != nil {
		return nil, nil, fmt.Errorf("count certificates by profile and revocation: %w", mapErr(err))
	}
	defer rows.Close()
	issued, revoked := map[string]int64{}, map[int]int64{}
	for rows.Next() {
		var (
			profile sql.NullString
			isRev   bool
			reason  sql.NullInt64
			n       int64
		)
		if err := rows.Scan(&profile, &isRev, &reason, &n); err != nil {
			return nil, nil, fmt.Errorf("count certificates: %w", mapErr(err))
		}
		issued[profile.String] += n
		if isRev {
			revoked[int(reason.Int64)] += n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("count certificates: %w", mapErr(err))
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
