package storage

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// DNSPersistMatch is the _validation-persist TXT record that satisfied a
// dns-persist-01 challenge (draft-ietf-acme-dns-persist §4.2).
type DNSPersistMatch struct {
	ChallengeID  string `gorm:"primaryKey;size:64"`
	AuthzID      string `gorm:"size:64;not null"`
	Name         string `gorm:"size:300;not null"` // e.g. _validation-persist.svc.internal
	Record       string `gorm:"type:text;not null"`
	PersistUntil *time.Time
	CreatedAt    time.Time `gorm:"not null"`
}

// TableName keeps the table name of migration 0011.
func (DNSPersistMatch) TableName() string { return "dns_persist_matches" }

// DNSPersistStore keeps what dns-persist-01 validations matched.
type DNSPersistStore interface {
	// RecordDNSPersistMatch stores m (a second record for the same
	// challenge replaces the first) and, when the record sets persistUntil,
	// brings the authorization's expiry forward to it: the draft (§4.1
	// item 5) forbids relying on the record after that time, and reuse
	// goes by the expiry.
	RecordDNSPersistMatch(ctx context.Context, m DNSPersistMatch) error
	// DNSPersistMatches returns the matches of the given authorizations,
	// keyed by challenge ID.
	DNSPersistMatches(ctx context.Context, authzIDs []string) (map[string]DNSPersistMatch, error)
}

func (s *gormStore) RecordDNSPersistMatch(ctx context.Context, m DNSPersistMatch) error {
	if m.CreatedAt.IsZero() {
		m.CreatedAt = s.now()
	}
	m.CreatedAt = ts(m.CreatedAt)
	if m.PersistUntil != nil {
		u := ts(*m.PersistUntil)
		m.PersistUntil = &u
	}
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("challenge_id = ?", m.ChallengeID).Delete(&DNSPersistMatch{}).Error; err != nil {
			return err
		}
		if err := tx.Create(&m).Error; err != nil {
			return err
		}
		if m.PersistUntil == nil {
			return nil
		}
		return tx.Exec(`UPDATE authorizations SET expires = ? WHERE id = ? AND expires > ?`,
			*m.PersistUntil, m.AuthzID, *m.PersistUntil).Error
	})
	if err != nil {
		return fmt.Errorf("record dns-persist-01 match of challenge %s: %w", m.ChallengeID, err)
	}
	return nil
}

func (s *gormStore) DNSPersistMatches(ctx context.Context, authzIDs []string) (map[string]DNSPersistMatch, error) {
	out := map[string]DNSPersistMatch{}
	if len(authzIDs) == 0 {
		return out, nil
	}
	var rows []DNSPersistMatch
	if err := s.db.WithContext(ctx).Where("authz_id IN ?", authzIDs).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("dns-persist-01 matches: %w", mapErr(err))
	}
	for _, r := range rows {
		out[r.ChallengeID] = r
	}
	return out, nil
}
