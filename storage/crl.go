package storage

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/certmint/certmint/ca/crl"
)

// crlRow is the crls table: one row per issuer holding its newest CRL.
type crlRow struct {
	Issuer     string    `gorm:"primaryKey;size:128"`
	Number     int64     `gorm:"not null"`
	ThisUpdate time.Time `gorm:"not null"`
	NextUpdate time.Time `gorm:"not null"`
	State      string    `gorm:"size:128;not null"`
	DER        []byte    `gorm:"column:der"`
}

func (crlRow) TableName() string { return "crls" }

// crlCounterPrefix names an issuer's CRL number counter in counters:
// the prefix and the issuer's ID. A restore moves these forward.
const crlCounterPrefix = "crl_number:"

// NextCRLNumber is one upsert with RETURNING (SQLite 3.35+, Postgres), so
// concurrent callers get distinct numbers without a lock.
func (s *gormStore) NextCRLNumber(ctx context.Context, issuer string) (int64, error) {
	var n int64
	err := s.q(ctx).Raw(`INSERT INTO counters (name, value) VALUES (?, 1)
		ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value`, crlCounterPrefix+issuer).
		Row().Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("allocate CRL number: %w", mapErr(err))
	}
	return n, nil
}

// SaveCRL is a conditional upsert: the DO UPDATE only fires for a higher
// number, so a replica that signed late cannot replace a newer list.
func (s *gormStore) SaveCRL(ctx context.Context, c *crl.CRL) (bool, error) {
	res := s.q(ctx).Exec(`INSERT INTO crls (issuer, number, this_update, next_update, state, der)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (issuer) DO UPDATE SET number = excluded.number, this_update = excluded.this_update,
			next_update = excluded.next_update, state = excluded.state, der = excluded.der
		WHERE crls.number < excluded.number`,
		c.Issuer, c.Number, ts(c.ThisUpdate), ts(c.NextUpdate), c.State, c.DER)
	if res.Error != nil {
		return false, fmt.Errorf("save CRL %d: %w", c.Number, mapErr(res.Error))
	}
	return res.RowsAffected == 1, nil
}

func (s *gormStore) GetCRL(ctx context.Context, issuer string, newerThan int64) (*crl.CRL, error) {
	var rows []crlRow
	err := s.q(ctx).Model(&crlRow{}).
		Select("issuer, number, this_update, next_update, state, CASE WHEN number > ? THEN der ELSE NULL END AS der", newerThan).
		Where("issuer = ?", issuer).Limit(1).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("get CRL of %s: %w", issuer, mapErr(err))
	}
	if len(rows) == 0 {
		return nil, nil
	}
	r := rows[0]
	return &crl.CRL{Issuer: r.Issuer, Number: r.Number, ThisUpdate: utc(r.ThisUpdate), NextUpdate: utc(r.NextUpdate),
		State: r.State, DER: r.DER}, nil
}

// RevocationState is the number of revoked certificates and the latest
// revocation time. Revocation is one-way, so any revocation changes the
// count; the time guards against a row deleted meanwhile. The time is
// formatted in SQL so that replicas in different time zones agree. The
// query is served by the index on certificates.revoked.
func (s *gormStore) RevocationState(ctx context.Context) (string, error) {
	latest := "MAX(revoked_at)" // stored as normalized UTC text
	if s.engine == enginePostgres {
		latest = `to_char(MAX(revoked_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')`
	}
	var (
		n int64
		t sql.NullString
	)
	err := s.q(ctx).Raw("SELECT COUNT(*), "+latest+" FROM certificates WHERE revoked = ?", true).Row().Scan(&n, &t)
	if err != nil {
		return "", fmt.Errorf("read revocation state: %w", mapErr(err))
	}
	return fmt.Sprintf("%d@%s", n, t.String), nil
}

// ListRevoked returns revoked certificates with NotAfter >= notAfterSince,
// in serial order: only what a CRL entry needs, as a CRL run may read many
// thousands of rows.
func (s *gormStore) ListRevoked(ctx context.Context, notAfterSince time.Time) ([]crl.Revoked, error) {
	var rows []certificateRow
	err := s.r(ctx).Model(&certificateRow{}).Select("id", "serial", "revoked_at", "revocation_reason").
		Where("revoked = ? AND not_after >= ?", true, ts(notAfterSince)).Order("serial").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list revoked certificates: %w", mapErr(err))
	}
	out := make([]crl.Revoked, len(rows))
	for i, r := range rows {
		out[i] = crl.Revoked{CertificateID: r.ID, Serial: r.Serial, RevokedAt: utcp(r.RevokedAt), Reason: r.RevocationReason}
	}
	return out, nil
}
