package storage

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// CRLStore keeps what CRL publishing (RFC 5280 §5) shares between
// replicas: the CRL number counter, the last signed CRL, and a cheap
// fingerprint of the revocation state that tells a replica whether the
// stored CRL is still current.
type CRLStore interface {
	// NextCRLNumber atomically allocates the next CRL number of issuer
	// (1, 2, 3 ...). Numbers never repeat, across restarts and replicas,
	// as RFC 5280 §5.2.3 requires.
	NextCRLNumber(ctx context.Context, issuer string) (int64, error)
	// SaveCRL stores c as issuer's current CRL unless a CRL with the same
	// or a higher number is stored already; it reports whether c was
	// stored.
	SaveCRL(ctx context.Context, c *CRL) (bool, error)
	// GetCRL returns issuer's stored CRL, or ErrNotFound. DER is only
	// filled when the stored Number is greater than newerThan, so a replica
	// polling for changes reads a few bytes, not the whole list.
	GetCRL(ctx context.Context, issuer string, newerThan int64) (*CRL, error)
	// RevocationState returns a short fingerprint of the set of revoked
	// certificates that changes whenever a certificate is revoked. It is
	// comparable only with other values from the same database.
	RevocationState(ctx context.Context) (string, error)
}

// CRL is a signed certificate revocation list as published.
type CRL struct {
	Issuer     string // which CA signed it, e.g. the hex SKI of the intermediate
	Number     int64  // CRL number, RFC 5280 §5.2.3
	ThisUpdate time.Time
	NextUpdate time.Time
	State      string // RevocationState when the list was read
	DER        []byte
}

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

// NextCRLNumber is one upsert with RETURNING (SQLite 3.35+, Postgres), so
// concurrent callers get distinct numbers without a lock.
func (s *gormStore) NextCRLNumber(ctx context.Context, issuer string) (int64, error) {
	var n int64
	err := s.q(ctx).Raw(`INSERT INTO counters (name, value) VALUES (?, 1)
		ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value`, "crl_number:"+issuer).
		Row().Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("allocate CRL number: %w", mapErr(err))
	}
	return n, nil
}

// SaveCRL is a conditional upsert: the DO UPDATE only fires for a higher
// number, so a replica that signed late cannot replace a newer list.
func (s *gormStore) SaveCRL(ctx context.Context, c *CRL) (bool, error) {
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

func (s *gormStore) GetCRL(ctx context.Context, issuer string, newerThan int64) (*CRL, error) {
	var r crlRow
	err := s.q(ctx).Model(&crlRow{}).
		Select("issuer, number, this_update, next_update, state, CASE WHEN number > ? THEN der ELSE NULL END AS der", newerThan).
		Where("issuer = ?", issuer).Take(&r).Error
	if err != nil {
		return nil, fmt.Errorf("get CRL of %s: %w", issuer, mapErr(err))
	}
	return &CRL{Issuer: r.Issuer, Number: r.Number, ThisUpdate: utc(r.ThisUpdate), NextUpdate: utc(r.NextUpdate),
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
