package storage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

func normCertForWrite(c *Certificate) {
	c.Serial = strings.ToLower(c.Serial)
	c.NotBefore, c.NotAfter, c.CreatedAt = ts(c.NotBefore), ts(c.NotAfter), ts(c.CreatedAt)
	c.RevokedAt = tsp(c.RevokedAt)
}

func normCert(c *Certificate) {
	c.NotBefore, c.NotAfter, c.CreatedAt = utc(c.NotBefore), utc(c.NotAfter), utc(c.CreatedAt)
	c.RevokedAt = utcp(c.RevokedAt)
}

// GetCertificate is a hand-written read (hotread.go): every download
// makes it.
func (s *gormStore) GetCertificate(ctx context.Context, id string) (*Certificate, error) {
	c, err := s.hot.getCertificate(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("get certificate %s: %w", id, err)
	}
	return c, nil
}

func (s *gormStore) GetCertificateBySerial(ctx context.Context, serialHex string) (*Certificate, error) {
	var c Certificate
	if err := s.r(ctx).Where("serial = ?", strings.ToLower(serialHex)).Take(&c).Error; err != nil {
		return nil, fmt.Errorf("get certificate by serial %s: %w", serialHex, mapErr(err))
	}
	normCert(&c)
	return &c, nil
}

func (s *gormStore) RevokeCertificate(ctx context.Context, id string, reason int, at time.Time) error {
	db := s.q(ctx)
	res := db.Model(&Certificate{}).Where("id = ? AND revoked = ?", id, false).
		Updates(map[string]any{"revoked": true, "revoked_at": ts(at), "revocation_reason": reason})
	if err := casDone(db, res, "certificates", id); err != nil {
		return fmt.Errorf("revoke certificate: %w", err)
	}
	return nil
}

// certWhere applies f. The state filters follow CertFilter at f.Now:
// valid = not revoked and NotAfter > now; expiring = valid and NotAfter <=
// now+Within; expired = not revoked and NotAfter <= now; revoked = revoked.
func certWhere(db *gorm.DB, f CertFilter) (*gorm.DB, error) {
	if f.AccountID != "" {
		db = db.Where("account_id = ?", f.AccountID)
	}
	if q := strings.TrimSpace(f.Query); q != "" {
		lq := strings.ToLower(q)
		switch {
		case isSerialLike(lq):
			// A serial: one indexed look-up instead of a scan of names.
			// Stored serials are whole bytes ("08c5..."); people may
			// copy one without its leading zero.
			t := strings.TrimLeft(lq, "0")
			db = db.Where("serial IN ?", []string{lq, t, "0" + t})
		case isIDLike(lq):
			db = db.Where("(account_id = ? OR id = ?)", lq, lq)
		default:
			db = db.Where(`names LIKE ? ESCAPE '\'`, "%"+likeEscape(lq)+"%")
		}
	}
	now := ts(f.Now)
	if f.State != "" && f.Now.IsZero() {
		now = ts(time.Now())
	}
	switch f.State {
	case "":
	case "valid":
		db = db.Where("revoked = ? AND not_after > ?", false, now)
	case "expiring":
		db = db.Where("revoked = ? AND not_after > ? AND not_after <= ?", false, now, ts(now.Add(f.Within)))
	case "expired":
		db = db.Where("revoked = ? AND not_after <= ?", false, now)
	case "revoked":
		db = db.Where("revoked = ?", true)
	default:
		return nil, fmt.Errorf("unknown certificate state %q", f.State)
	}
	return db, nil
}

func (s *gormStore) ListCertificates(ctx context.Context, f CertFilter, page Page) ([]Certificate, error) {
	db, err := certWhere(s.r(ctx).Model(&Certificate{}), f)
	if err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	if page.After != "" {
		db = db.Where("id < ?", page.After)
	}
	var out []Certificate
	if err := db.Order("id DESC").Limit(limitOf(page)).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list certificates: %w", mapErr(err))
	}
	for i := range out {
		normCert(&out[i])
	}
	return out, nil
}

func (s *gormStore) CountCertificates(ctx context.Context, f CertFilter) (int64, error) {
	db, err := certWhere(s.r(ctx).Model(&Certificate{}), f)
	if err != nil {
		return 0, fmt.Errorf("count certificates: %w", err)
	}
	var n int64
	if err := db.Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count certificates: %w", mapErr(err))
	}
	return n, nil
}

// revokedColumns is what a CRL needs; DER and chain are left out, as a
// CRL run may read many thousands of rows.
var revokedColumns = []string{"id", "serial", "account_id", "order_id", "names", "common_name",
	"not_before", "not_after", "revoked", "revoked_at", "revocation_reason", "ari_id", "created_at"}

// ListRevoked returns revoked certificates with NotAfter >= notAfterSince,
// in serial order, without DER and ChainPEM.
func (s *gormStore) ListRevoked(ctx context.Context, notAfterSince time.Time) ([]Certificate, error) {
	var out []Certificate
	err := s.r(ctx).Model(&Certificate{}).Select(revokedColumns).
		Where("revoked = ? AND not_after >= ?", true, ts(notAfterSince)).Order("serial").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list revoked certificates: %w", mapErr(err))
	}
	for i := range out {
		normCert(&out[i])
	}
	return out, nil
}

// IssuedPerDay groups in SQL; the day expression differs by engine. On
// SQLite times are stored as UTC text ("2006-01-02 15:04:05..."), so the
// day is the first ten characters.
func (s *gormStore) IssuedPerDay(ctx context.Context, since time.Time) (map[string]int64, error) {
	day := "substr(created_at, 1, 10)"
	if s.engine == enginePostgres {
		day = "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
	}
	var rows []struct {
		Day string
		N   int64
	}
	err := s.r(ctx).Model(&Certificate{}).Select(day+" AS day, COUNT(*) AS n").
		Where("created_at >= ?", ts(since)).Group(day).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("count issued certificates per day: %w", mapErr(err))
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.Day] = r.N
	}
	return out, nil
}

// isSerialLike reports whether q can only be a certificate serial: 24 to 40
// hex digits (certmint's are 32), longer than any label people search by.
func isSerialLike(q string) bool {
	if len(q) < 24 || len(q) > 40 {
		return false
	}
	for _, c := range q {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// isIDLike reports whether q has the form of NewID's IDs (26 base32hex
// characters) and no dot, so it is an account or certificate ID.
func isIDLike(q string) bool {
	if len(q) != 26 {
		return false
	}
	for _, c := range q {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'v') {
			return false
		}
	}
	return true
}
