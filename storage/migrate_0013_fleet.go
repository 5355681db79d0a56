package storage

import (
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/certmint/certmint/acme"
)

// Migration 0013_fleet adds the fleet inventory (lineages) and the webhook
// tables (endpoints, the delivery outbox, and marks that rate-limit
// events), and backfills a lineage for every certificate already issued.
// It keeps its own frozen copies of the row types.
func init() { register("0013_fleet", migrateFleet0013) }

type fleet0013Lineage struct {
	ID              string     `gorm:"primaryKey;size:64;index:idx_lineages_late,priority:4;index:idx_lineages_window,priority:4;index:idx_lineages_expired,priority:3"`
	AccountID       string     `gorm:"size:64;not null;index:idx_lineages_match,priority:1"`
	NamesHash       string     `gorm:"size:64;not null;index:idx_lineages_match,priority:2"`
	Names           string     `gorm:"type:text;not null"`
	CertificateID   string     `gorm:"size:64;not null;uniqueIndex"`
	Serial          string     `gorm:"size:64;not null"`
	ARIID           string     `gorm:"size:255;index"`
	Profile         string     `gorm:"size:64"`
	IssuedAt        time.Time  `gorm:"not null"`
	NotAfter        time.Time  `gorm:"not null;index:idx_lineages_late,priority:3;index:idx_lineages_expired,priority:2"`
	WindowStart     time.Time  `gorm:"not null;index:idx_lineages_window,priority:2"`
	WindowEnd       time.Time  `gorm:"not null;index:idx_lineages_late,priority:2;index:idx_lineages_window,priority:3"`
	Renewals        int        `gorm:"not null"`
	LastRenewalAt   *time.Time `gorm:""`
	Revoked         bool       `gorm:"not null;index:idx_lineages_late,priority:1;index:idx_lineages_window,priority:1;index:idx_lineages_expired,priority:1"`
	OverdueNotified bool       `gorm:"not null"`
}

func (fleet0013Lineage) TableName() string { return "lineages" }

type fleet0013Endpoint struct {
	ID        string    `gorm:"primaryKey;size:64"`
	URL       string    `gorm:"type:text;not null"`
	Secret    string    `gorm:"type:text;not null"`
	Events    string    `gorm:"size:255;not null"`
	CreatedBy string    `gorm:"size:255"`
	CreatedAt time.Time `gorm:"not null"`
}

func (fleet0013Endpoint) TableName() string { return "webhook_endpoints" }

type fleet0013Delivery struct {
	ID            string    `gorm:"primaryKey;size:64"`
	EventID       string    `gorm:"size:64;not null;index"`
	EventType     string    `gorm:"size:64;not null"`
	EndpointID    string    `gorm:"size:64;not null;index"`
	Body          string    `gorm:"type:text;not null"`
	Status        string    `gorm:"size:16;not null"`
	Attempts      int       `gorm:"not null"`
	NextAttemptAt time.Time `gorm:"not null"`
	LeaseHolder   string    `gorm:"size:255"`
	LastCode      int       `gorm:"not null"`
	LastError     string    `gorm:"type:text"`
	CreatedAt     time.Time `gorm:"not null;index"`
	DeliveredAt   *time.Time
}

func (fleet0013Delivery) TableName() string { return "webhook_deliveries" }

type fleet0013Mark struct {
	Name  string    `gorm:"primaryKey;size:255"`
	Until time.Time `gorm:"not null"`
}

func (fleet0013Mark) TableName() string { return "webhook_marks" }

func migrateFleet0013(tx *gorm.DB) error {
	if err := tx.Migrator().CreateTable(&fleet0013Lineage{}, &fleet0013Endpoint{}, &fleet0013Delivery{}, &fleet0013Mark{}); err != nil {
		return err
	}
	// The dispatcher's poll: only deliveries still to be made, in the
	// order they are due (see deliveryPending).
	if err := tx.Exec("CREATE INDEX idx_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE " + deliveryPending).Error; err != nil {
		return err
	}
	return backfillLineages0013(tx)
}

// backfillLineages0013 links the certificates already issued into
// lineages, oldest first, by the rule CompleteFinalize applies to new
// ones (joinLineage). The lineages are built in memory, so the pass reads
// each certificate once; a million certificates need some hundreds of MB
// at most for a few seconds, once.
func backfillLineages0013(tx *gorm.DB) error {
	rows, err := tx.Table("certificates c").
		Select("c.id, c.account_id, c.names, c.serial, c.ari_id, c.profile, c.not_before, c.not_after, c.created_at, c.revoked, COALESCE(o.replaces, '') AS replaces").
		Joins("LEFT JOIN orders o ON o.id = c.order_id").Order("c.created_at, c.id").Rows()
	if err != nil {
		return fmt.Errorf("read certificates: %w", err)
	}
	defer rows.Close()
	var all []*fleet0013Lineage
	byARI := map[string]*fleet0013Lineage{}
	byNames := map[string]*fleet0013Lineage{}
	for rows.Next() {
		var c struct {
			ID, AccountID, Names, Serial, ARIID, Profile string
			NotBefore, NotAfter, CreatedAt               time.Time
			Revoked                                      bool
			Replaces                                     string
		}
		if err := tx.ScanRows(rows, &c); err != nil {
			return fmt.Errorf("read certificate: %w", err)
		}
		names := canonicalNames(splitNames(c.Names))
		key := c.AccountID + "/" + namesHash(names)
		l := byARI[c.Replaces]
		if c.Replaces == "" || l == nil {
			if l = byNames[key]; l != nil && l.Revoked {
				l = nil
			}
		}
		ws, we := acme.SuggestedWindow(c.NotBefore, c.NotAfter)
		if l == nil {
			l = &fleet0013Lineage{ID: c.ID}
			all = append(all, l)
		} else {
			delete(byARI, l.ARIID)
			oldKey := l.AccountID + "/" + l.NamesHash
			if byNames[oldKey] == l {
				delete(byNames, oldKey)
			}
			l.Renewals++
			at := ts(c.CreatedAt)
			l.LastRenewalAt = &at
		}
		l.AccountID, l.NamesHash, l.Names = c.AccountID, namesHash(names), joinNames(names)
		l.CertificateID, l.Serial, l.ARIID, l.Profile = c.ID, c.Serial, c.ARIID, c.Profile
		l.IssuedAt, l.NotAfter, l.WindowStart, l.WindowEnd = ts(c.NotBefore), ts(c.NotAfter), ts(ws), ts(we)
		l.Revoked = c.Revoked
		// Lineages already late when certmint learns of them are not
		// announced: a backlog of old news is noise, not an alert.
		l.OverdueNotified = true
		if c.ARIID != "" {
			byARI[c.ARIID] = l
		}
		byNames[key] = l
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read certificates: %w", err)
	}
	if len(all) == 0 {
		return nil
	}
	return tx.CreateInBatches(all, 500).Error
}
