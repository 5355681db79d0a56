package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/internal/webhook"
)

// lineageRow is one service's chain of certificates: the first one and
// every certificate that replaced it, linked by ARI `replaces` (RFC 9773
// §5) or, failing that, by the same names and account. CompleteFinalize
// keeps it current in the transaction that stores each certificate, so
// the inventory's state at a time is a range query on indexed columns
// (see lineageState), never a computation over the certificates.
type lineageRow struct {
	ID              string     `gorm:"primaryKey;size:64;index:idx_lineages_late,priority:4;index:idx_lineages_window,priority:4;index:idx_lineages_expired,priority:3"` // the first certificate's ID
	AccountID       string     `gorm:"size:64;not null;index:idx_lineages_match,priority:1"`
	NamesHash       string     `gorm:"size:64;not null;index:idx_lineages_match,priority:2"` // of the sorted names
	Names           string     `gorm:"type:text;not null"`                                   // sorted lowercase names, comma separated
	CertificateID   string     `gorm:"size:64;not null;uniqueIndex"`                         // the current certificate
	Serial          string     `gorm:"size:64;not null"`
	ARIID           string     `gorm:"size:255;index"` // the current certificate's, to follow `replaces`
	Profile         string     `gorm:"size:64"`
	IssuedAt        time.Time  `gorm:"not null"` // the current certificate's notBefore
	NotAfter        time.Time  `gorm:"not null;index:idx_lineages_late,priority:3;index:idx_lineages_expired,priority:2"`
	WindowStart     time.Time  `gorm:"not null;index:idx_lineages_window,priority:2"` // the ARI suggested window (acme.SuggestedWindow)
	WindowEnd       time.Time  `gorm:"not null;index:idx_lineages_late,priority:2;index:idx_lineages_window,priority:3"`
	Renewals        int        `gorm:"not null"`
	LastRenewalAt   *time.Time // when the current certificate replaced the previous one
	Revoked         bool       `gorm:"not null;index:idx_lineages_late,priority:1;index:idx_lineages_window,priority:1;index:idx_lineages_expired,priority:1"` // the current certificate is revoked
	OverdueNotified bool       `gorm:"not null"`                                                                                                               // renewal.overdue is queued for the current certificate
	Identity        string     `gorm:"size:2048;not null;default:''"`                                                                                          // the current certificate's SPIFFE ID (0022)
}

func (lineageRow) TableName() string { return "lineages" }

// Lineage states, as the inventory filters them.
const (
	LineageHealthy  = "healthy"
	LineageDue      = "due"
	LineageOverdue  = "overdue"
	LineageExpired  = "expired"
	LineageRevoked  = "revoked"
	lineageStateAll = ""
)

// LineageStates are the states in the order the console lists them.
var LineageStates = []string{LineageHealthy, LineageDue, LineageOverdue, LineageExpired, LineageRevoked}

// Lineage is one row of the fleet inventory.
type Lineage struct {
	ID            string
	AccountID     string
	Names         []string
	CertificateID string
	Serial        string
	Profile       string
	IssuedAt      time.Time
	NotAfter      time.Time
	WindowStart   time.Time
	WindowEnd     time.Time
	Renewals      int
	LastRenewalAt *time.Time
	Revoked       bool
	Identity      string // the current certificate's SPIFFE ID, "" for none
	State         string // at the time the list was read
}

// LineageFilter narrows the inventory. Empty fields do not filter.
type LineageFilter struct {
	State   string    // one of LineageStates
	Pattern string    // a name, or a SPIFFE ID when it has a "/", or part of one; * matches any characters
	Now     time.Time // the time the states are evaluated at
}

func (r *lineageRow) toModel(now time.Time) Lineage {
	l := Lineage{ID: r.ID, AccountID: r.AccountID, Names: splitNames(r.Names), CertificateID: r.CertificateID,
		Serial: r.Serial, Profile: r.Profile, IssuedAt: utc(r.IssuedAt), NotAfter: utc(r.NotAfter),
		WindowStart: utc(r.WindowStart), WindowEnd: utc(r.WindowEnd), Renewals: r.Renewals,
		LastRenewalAt: utcp(r.LastRenewalAt), Revoked: r.Revoked, Identity: r.Identity}
	switch {
	case r.Revoked:
		l.State = LineageRevoked
	case !now.Before(r.NotAfter):
		l.State = LineageExpired
	case !now.Before(r.WindowEnd):
		l.State = LineageOverdue
	case !now.Before(r.WindowStart):
		l.State = LineageDue
	default:
		l.State = LineageHealthy
	}
	return l
}

// lineageState restricts db to the lineages in state at now, with the
// boundaries of toModel: healthy before the window, due inside it,
// overdue after it until expiry. As window_start < window_end < not_after,
// each state is one range of one index, and a count reads only that
// index: healthy idx_lineages_window (revoked, window_start, window_end),
// due the same, overdue idx_lineages_late (revoked, window_end,
// not_after), expired idx_lineages_expired (revoked, not_after).
//
// With indexed false the columns are wrapped in COALESCE, which no index
// serves: see ListLineages for why a list sometimes wants that.
func lineageState(db *gorm.DB, state string, now time.Time, indexed bool) (*gorm.DB, error) {
	now = ts(now)
	c := func(col string) string {
		if indexed {
			return col
		}
		return "COALESCE(" + col + ", " + col + ")"
	}
	unrevoked := c("revoked") + " = ?"
	switch state {
	case lineageStateAll:
		return db, nil
	case LineageRevoked:
		return db.Where(c("revoked")+" = ?", true), nil
	case LineageExpired:
		return db.Where(c("revoked")+" = ? AND "+c("not_after")+" <= ?", false, now), nil
	case LineageOverdue:
		return db.Where(unrevoked+" AND "+c("window_end")+" <= ? AND "+c("not_after")+" > ?", false, now, now), nil
	case LineageDue:
		return db.Where(unrevoked+" AND "+c("window_start")+" <= ? AND "+c("window_end")+" > ?", false, now, now), nil
	case LineageHealthy:
		return db.Where(unrevoked+" AND "+c("window_start")+" > ?", false, now), nil
	}
	return nil, fmt.Errorf("unknown lineage state %q; the states are %s", state, strings.Join(LineageStates, ", "))
}

func lineageWhere(db *gorm.DB, f LineageFilter, indexed bool) (*gorm.DB, error) {
	if f.Now.IsZero() {
		f.Now = time.Now()
	}
	db, err := lineageState(db, f.State, f.Now, indexed)
	if err != nil {
		return nil, err
	}
	if p := strings.ToLower(strings.TrimSpace(f.Pattern)); p != "" {
		like := "%" + strings.ReplaceAll(likeEscape(p), "*", "%") + "%"
		db = db.Where(nameOrIdentity(p), like)
	}
	return db, nil
}

// rareState is the most lineages a state may hold for its list to be
// read through its state index (the IDs, sorted here, then one page of
// rows by ID); above it the list walks the primary key newest first and
// filters, which finds a page after about pageSize*total/matches rows.
//
// Why: a page is ORDER BY id, which a state index cannot give, and SQLite
// has no statistics to choose between the two plans. Left to itself, with
// 300,000 lineages, it sorted all 299,900 healthy ones for one page
// (2.5 s), or walked every row for a state with no lineage (0.5 s). The
// count (index only, under a millisecond for a rare state) tells the two
// cases apart; both plans then take a few milliseconds.
const rareState = 2000

// ListLineages pages the inventory newest lineage first (keyset on ID).
func (s *gormStore) ListLineages(ctx context.Context, f LineageFilter, page Page) ([]Lineage, error) {
	if f.Now.IsZero() {
		f.Now = time.Now()
	}
	indexed := false
	if f.State != "" {
		n, err := s.countLineages(ctx, LineageFilter{State: f.State, Now: f.Now}, rareState+1)
		if err != nil {
			return nil, err
		}
		indexed = n <= rareState
	}
	db, err := lineageWhere(s.r(ctx).Model(&lineageRow{}), f, indexed)
	if err != nil {
		return nil, fmt.Errorf("list lineages: %w", err)
	}
	if page.After != "" {
		db = db.Where("id < ?", page.After)
	}
	if indexed {
		// No ORDER BY, so the state index serves the WHERE.
		var ids []string
		if err := db.Pluck("id", &ids).Error; err != nil {
			return nil, fmt.Errorf("list lineages: %w", mapErr(err))
		}
		slices.Sort(ids)
		slices.Reverse(ids)
		ids = ids[:min(len(ids), limitOf(page))]
		db = s.r(ctx).Model(&lineageRow{}).Where("id IN ?", ids)
		if len(ids) == 0 {
			return nil, nil
		}
	}
	var rows []lineageRow
	if err := db.Order("id DESC").Limit(limitOf(page)).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list lineages: %w", mapErr(err))
	}
	out := make([]Lineage, len(rows))
	for i := range rows {
		out[i] = rows[i].toModel(f.Now)
	}
	return out, nil
}

// CountLineages counts the lineages matching f.
func (s *gormStore) CountLineages(ctx context.Context, f LineageFilter) (int64, error) {
	return s.countLineages(ctx, f, 0)
}

// countLineages counts up to limit (0: all) lineages matching f.
func (s *gormStore) countLineages(ctx context.Context, f LineageFilter, limit int) (int64, error) {
	db, err := lineageWhere(s.r(ctx).Model(&lineageRow{}), f, true)
	if err != nil {
		return 0, fmt.Errorf("count lineages: %w", err)
	}
	if limit > 0 {
		db = s.r(ctx).Table("(?) AS capped", db.Select("1").Limit(limit))
	}
	var n int64
	if err := db.Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count lineages: %w", mapErr(err))
	}
	return n, nil
}

// CountOverdue counts the lineages past their renewal window and not yet
// expired at now: the certmint_renewals_overdue gauge and the dashboard.
func (s *gormStore) CountOverdue(ctx context.Context, now time.Time) (int64, error) {
	return s.CountLineages(ctx, LineageFilter{State: LineageOverdue, Now: now})
}

// canonicalNames sorts and de-duplicates names, so that one set of names
// has one spelling and one hash.
func canonicalNames(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, strings.ToLower(n))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func joinNames(names []string) string { return strings.Join(names, ",") }

// namesHash keys the names match in an index: the names themselves can
// be longer than an index entry may be (100 identifiers of 253 bytes).
func namesHash(names []string) string {
	h := sha256.Sum256([]byte(joinNames(names)))
	return hex.EncodeToString(h[:])
}

// joinLineage files cert, just inserted by CompleteFinalize in tx, into
// its lineage: the one whose current certificate the order replaces
// (RFC 9773 §5), or else the newest unrevoked one with the same names and
// account, or a new one. The update is conditional on the lineage's
// current certificate, so of two certificates racing to renew one
// lineage the second starts its own rather than hiding the first.
func joinLineage(tx *gorm.DB, cert *acme.Certificate, replaces string) (string, error) {
	names := canonicalNames(cert.Names)
	hash := namesHash(names)
	var cand []lineageRow
	if replaces != "" {
		if err := tx.Where("ari_id = ?", replaces).Limit(1).Find(&cand).Error; err != nil {
			return "", fmt.Errorf("find lineage replaced: %w", err)
		}
	}
	if len(cand) == 0 {
		if err := tx.Where("account_id = ? AND names_hash = ? AND revoked = ?", cert.AccountID, hash, false).
			Order("id DESC").Limit(1).Find(&cand).Error; err != nil {
			return "", fmt.Errorf("find lineage by names: %w", err)
		}
	}
	ws, we := acme.SuggestedWindow(cert.NotBefore, cert.NotAfter)
	row := lineageRow{ID: cert.ID, AccountID: cert.AccountID, NamesHash: hash, Names: joinNames(names),
		CertificateID: cert.ID, Serial: cert.Serial, ARIID: cert.ARIID, Profile: cert.Profile,
		IssuedAt: ts(cert.NotBefore), NotAfter: ts(cert.NotAfter), WindowStart: ts(ws), WindowEnd: ts(we), Identity: cert.Identity}
	if len(cand) == 1 {
		old := cand[0]
		at := ts(cert.CreatedAt)
		res := tx.Model(&lineageRow{}).Where("id = ? AND certificate_id = ?", old.ID, old.CertificateID).
			Updates(map[string]any{"account_id": row.AccountID, "names_hash": row.NamesHash, "names": row.Names,
				"certificate_id": row.CertificateID, "serial": row.Serial, "ari_id": row.ARIID, "profile": row.Profile,
				"issued_at": row.IssuedAt, "not_after": row.NotAfter, "window_start": row.WindowStart, "window_end": row.WindowEnd,
				"renewals": old.Renewals + 1, "last_renewal_at": at, "revoked": false, "overdue_notified": false,
				"identity": row.Identity})
		if res.Error != nil {
			return "", fmt.Errorf("renew lineage %s: %w", old.ID, res.Error)
		}
		if res.RowsAffected == 1 {
			return old.ID, nil
		}
	}
	if err := tx.Create(&row).Error; err != nil {
		return "", fmt.Errorf("start lineage: %w", err)
	}
	return row.ID, nil
}

// revokeLineage marks the lineage whose current certificate is certID as
// revoked (and not replaced); a revoked certificate that was already
// replaced leaves its lineage alone.
func revokeLineage(tx *gorm.DB, certID string) error {
	return tx.Model(&lineageRow{}).Where("certificate_id = ?", certID).Update("revoked", true).Error
}

// NotifyOverdue queues renewal.overdue for every lineage that passed the
// end of its renewal window by now without a successor (and has not
// expired), once per certificate: the flag is set with a conditional
// update in the transaction that queues the deliveries, so replicas
// sweeping at once announce each lineage once. It returns how many
// lineages turned overdue.
func (s *gormStore) NotifyOverdue(ctx context.Context, now time.Time) (int, error) {
	now = ts(now)
	var rows []lineageRow
	err := s.r(ctx).Where("revoked = ? AND overdue_notified = ? AND not_after > ? AND window_end <= ?", false, false, now, now).
		Order("window_end").Limit(200).Find(&rows).Error
	if err != nil {
		return 0, fmt.Errorf("find overdue lineages: %w", mapErr(err))
	}
	n := 0
	for _, r := range rows {
		err := s.tx(ctx, func(tx *gorm.DB) error {
			res := tx.Model(&lineageRow{}).Where("id = ? AND certificate_id = ? AND overdue_notified = ?", r.ID, r.CertificateID, false).
				Update("overdue_notified", true)
			if res.Error != nil || res.RowsAffected == 0 {
				return res.Error
			}
			n++
			return enqueueEvent(tx, webhook.RenewalOverdue, lineageEventData(&r), now)
		})
		if err != nil {
			return n, fmt.Errorf("announce overdue lineage %s: %w", r.ID, err)
		}
	}
	return n, nil
}

func lineageEventData(r *lineageRow) map[string]any {
	d := map[string]any{"lineage_id": r.ID, "certificate_id": r.CertificateID, "serial": r.Serial,
		"names": splitNames(r.Names), "account_id": r.AccountID, "profile": r.Profile,
		"renewal_window_end": r.WindowEnd.UTC().Format(time.RFC3339), "not_after": r.NotAfter.UTC().Format(time.RFC3339)}
	if r.Identity != "" {
		d["identity"] = r.Identity
	}
	return d
}
