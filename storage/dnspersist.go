package storage

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/certmint/certmint/acme"
)

// dnsPersistMatchRow is the dns_persist_matches table (migration 0014).
type dnsPersistMatchRow struct {
	ChallengeID  string `gorm:"primaryKey;size:64"`
	AuthzID      string `gorm:"size:64;not null"`
	Name         string `gorm:"size:300;not null"`
	Record       string `gorm:"type:text;not null"`
	PersistUntil *time.Time
	CreatedAt    time.Time `gorm:"not null"`
}

func (dnsPersistMatchRow) TableName() string { return "dns_persist_matches" }

// DNSPersistStore reads what dns-persist-01 validations matched, for the
// console; acme.ChallengeStore records them.
type DNSPersistStore interface {
	// DNSPersistMatches returns the matches of the given authorizations,
	// keyed by challenge ID.
	DNSPersistMatches(ctx context.Context, authzIDs []string) (map[string]acme.DNSPersistMatch, error)
}

func (s *gormStore) RecordDNSPersistMatch(ctx context.Context, match acme.DNSPersistMatch) error {
	if match.CreatedAt.IsZero() {
		match.CreatedAt = s.now()
	}
	m := dnsPersistMatchRow{ChallengeID: match.ChallengeID, AuthzID: match.AuthzID, Name: match.Name,
		Record: match.Record, PersistUntil: tsp(match.PersistUntil), CreatedAt: ts(match.CreatedAt)}
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("challenge_id = ?", m.ChallengeID).Delete(&dnsPersistMatchRow{}).Error; err != nil {
			return err
		}
		if err := tx.Create(&m).Error; err != nil {
			return mapErr(err)
		}
		if m.PersistUntil == nil {
			return nil
		}
		return tx.Model(&authzRow{}).Where("id = ? AND expires > ?", m.AuthzID, *m.PersistUntil).
			Update("expires", *m.PersistUntil).Error
	})
	if err != nil {
		return fmt.Errorf("record dns-persist-01 match of challenge %s: %w", m.ChallengeID, err)
	}
	return nil
}

func (s *gormStore) DNSPersistMatches(ctx context.Context, authzIDs []string) (map[string]acme.DNSPersistMatch, error) {
	out := map[string]acme.DNSPersistMatch{}
	if len(authzIDs) == 0 {
		return out, nil
	}
	var rows []dnsPersistMatchRow
	if err := s.r(ctx).Where("authz_id IN ?", authzIDs).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("dns-persist-01 matches: %w", mapErr(err))
	}
	for _, r := range rows {
		out[r.ChallengeID] = acme.DNSPersistMatch{ChallengeID: r.ChallengeID, AuthzID: r.AuthzID, Name: r.Name,
			Record: r.Record, PersistUntil: utcp(r.PersistUntil), CreatedAt: utc(r.CreatedAt)}
	}
	return out, nil
}
