package storage

import (
	"context"
	"fmt"
	"time"
)

// CertificateStats are the dashboard's counts at one moment.
type CertificateStats struct {
	Total, Valid, Expiring7, Expiring30, Revoked int64
}

// CertificateStats counts every state in one pass over the certificates,
// where separate COUNTs would each read the table.
func (s *gormStore) CertificateStats(ctx context.Context, now time.Time) (CertificateStats, error) {
	n, d7, d30 := ts(now), ts(now.Add(7*24*time.Hour)), ts(now.Add(30*24*time.Hour))
	var st CertificateStats
	err := s.r(ctx).Raw(`SELECT COUNT(*) AS total,
		COALESCE(SUM(CASE WHEN revoked = ? AND not_after > ? THEN 1 ELSE 0 END), 0) AS valid,
		COALESCE(SUM(CASE WHEN revoked = ? AND not_after > ? AND not_after <= ? THEN 1 ELSE 0 END), 0) AS expiring7,
		COALESCE(SUM(CASE WHEN revoked = ? AND not_after > ? AND not_after <= ? THEN 1 ELSE 0 END), 0) AS expiring30,
		COALESCE(SUM(CASE WHEN revoked = ? THEN 1 ELSE 0 END), 0) AS revoked
		FROM certificates`, false, n, false, n, d7, false, n, d30, true).Row().
		Scan(&st.Total, &st.Valid, &st.Expiring7, &st.Expiring30, &st.Revoked)
	if err != nil {
		return CertificateStats{}, fmt.Errorf("count certificates by state: %w", mapErr(err))
	}
	return st, nil
}
