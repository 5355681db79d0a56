package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/certmint/certmint/internal/audit"
	"github.com/certmint/certmint/internal/auditchain"
)

// auditSealRow is one link of the audit log's hash chain; see
// internal/auditchain for what it covers and why.
type auditSealRow struct {
	Seq        int64     `gorm:"primaryKey;autoIncrement:false"`
	SealedAt   time.Time `gorm:"not null"`
	AfterID    string    `gorm:"size:64;not null"`
	UptoID     string    `gorm:"size:64;not null"`
	EntryCount int       `gorm:"not null"`
	Digests    string    `gorm:"type:text;not null"`
	Hash       string    `gorm:"size:64;not null"`
	MAC        string    `gorm:"column:mac;size:64;not null"`
}

func (auditSealRow) TableName() string { return "audit_seals" }

func (r auditSealRow) toModel() auditchain.Seal {
	return auditchain.Seal{Seq: r.Seq, SealedAt: utc(r.SealedAt), After: r.AfterID, Upto: r.UptoID,
		Count: r.EntryCount, Digests: r.Digests, Hash: r.Hash, MAC: r.MAC}
}

// AuditSealStore keeps the seals of the audit log and reads the log in
// the order they cover it (ID order).
type AuditSealStore interface {
	auditchain.Reader
	// LastAuditSeal returns the newest seal without its Digests, or nil.
	LastAuditSeal(ctx context.Context) (*auditchain.Seal, error)
	// AddAuditSeal stores a seal; ErrConflict when its Seq exists.
	AddAuditSeal(ctx context.Context, s auditchain.Seal) error
}

var _ auditchain.Store = Store(nil)

func (s *gormStore) AuditSeals(ctx context.Context, after int64, limit int) ([]auditchain.Seal, error) {
	var rows []auditSealRow
	if err := s.r(ctx).Where("seq > ?", after).Order("seq").Limit(limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list audit seals: %w", mapErr(err))
	}
	out := make([]auditchain.Seal, len(rows))
	for i, r := range rows {
		out[i] = r.toModel()
	}
	return out, nil
}

func (s *gormStore) LastAuditSeal(ctx context.Context) (*auditchain.Seal, error) {
	var rows []auditSealRow
	err := s.r(ctx).Select("seq, sealed_at, after_id, upto_id, entry_count, hash, mac").
		Order("seq DESC").Limit(1).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("read the last audit seal: %w", mapErr(err))
	}
	if len(rows) == 0 {
		return nil, nil
	}
	m := rows[0].toModel()
	return &m, nil
}

func (s *gormStore) AddAuditSeal(ctx context.Context, seal auditchain.Seal) error {
	row := auditSealRow{Seq: seal.Seq, SealedAt: ts(seal.SealedAt), AfterID: seal.After, UptoID: seal.Upto,
		EntryCount: seal.Count, Digests: seal.Digests, Hash: seal.Hash, MAC: seal.MAC}
	if err := s.q(ctx).Create(&row).Error; err != nil {
		err = mapErr(err)
		if errors.Is(err, ErrConflict) {
			return fmt.Errorf("audit seal %d exists: %w", seal.Seq, ErrConflict)
		}
		return fmt.Errorf("add audit seal %d: %w", seal.Seq, err)
	}
	return nil
}

func (s *gormStore) AuditEntries(ctx context.Context, after, upto string, limit int) ([]audit.Event, error) {
	db := s.r(ctx).Where("id > ?", after)
	if upto != "" {
		db = db.Where("id <= ?", upto)
	}
	var rows []auditRow
	if err := db.Order("id").Limit(limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read audit entries: %w", mapErr(err))
	}
	out := make([]audit.Event, len(rows))
	for i, r := range rows {
		out[i] = r.toModel()
	}
	return out, nil
}

func (s *gormStore) CountAuditEntries(ctx context.Context, after string) (int64, error) {
	var n int64
	if err := s.r(ctx).Model(&auditRow{}).Where("id > ?", after).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count audit entries: %w", mapErr(err))
	}
	return n, nil
}
