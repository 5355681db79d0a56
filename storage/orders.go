package storage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

func normOrder(o *Order) {
	o.Expires = utc(o.Expires)
	o.NotBefore = utcp(o.NotBefore)
	o.NotAfter = utcp(o.NotAfter)
	o.CreatedAt = utc(o.CreatedAt)
}

// CreateOrder writes the order, its new authorizations, their challenges
// and the order-authorization links in one transaction of four batched
// INSERTs. Empty IDs of the order and challenges are filled in; new
// authorizations need their IDs set by the caller, as o.AuthzIDs lists them.
func (s *gormStore) CreateOrder(ctx context.Context, o *Order, newAuthzs []Authorization) error {
	if o.ID == "" {
		o.ID = NewID()
	}
	now := s.now()
	if o.CreatedAt.IsZero() {
		o.CreatedAt = now
	}
	o.CreatedAt, o.Expires = ts(o.CreatedAt), ts(o.Expires)
	o.NotBefore, o.NotAfter = tsp(o.NotBefore), tsp(o.NotAfter)
	links := make([]OrderAuthz, len(o.AuthzIDs))
	for i, id := range o.AuthzIDs {
		links[i] = OrderAuthz{OrderID: o.ID, AuthzID: id, Position: i}
	}
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := insertAuthzs(tx, newAuthzs, now); err != nil {
			return err
		}
		if err := insertOrder(tx, o); err != nil {
			return err
		}
		return insertOrderLinks(tx, links)
	})
	if err != nil {
		return fmt.Errorf("create order: %w", err)
	}
	return nil
}

// insertAuthzs inserts authorizations and then all of their challenges,
// each as one multi-row INSERT.
func insertAuthzs(tx *gorm.DB, authzs []Authorization, now time.Time) error {
	if len(authzs) == 0 {
		return nil
	}
	var chals []Challenge
	for i := range authzs {
		a := &authzs[i]
		if a.ID == "" {
			a.ID = NewID()
		}
		if a.CreatedAt.IsZero() {
			a.CreatedAt = now
		}
		a.CreatedAt, a.Expires = ts(a.CreatedAt), ts(a.Expires)
		for j := range a.Challenges {
			c := &a.Challenges[j]
			if c.ID == "" {
				c.ID = NewID()
			}
			c.AuthzID = a.ID
			c.Validated = tsp(c.Validated)
			chals = append(chals, *c)
		}
	}
	return insertAuthzRows(tx, authzs, chals)
}

// GetOrder reads the order and its authorization IDs in one query
// (hotread.go).
func (s *gormStore) GetOrder(ctx context.Context, id string) (*Order, error) {
	o, err := s.hot.getOrder(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("get order %s: %w", id, err)
	}
	return o, nil
}

func (s *gormStore) ListOrderIDs(ctx context.Context, accountID, after string, limit int) ([]string, error) {
	db := s.r(ctx).Model(&Order{}).Where("account_id = ?", accountID)
	if after != "" {
		db = db.Where("id > ?", after)
	}
	ids := []string{}
	if err := db.Order("id").Limit(limitOf(Page{Limit: limit})).Pluck("id", &ids).Error; err != nil {
		return nil, fmt.Errorf("list orders of account %s: %w", accountID, mapErr(err))
	}
	return ids, nil
}

// ListOrders returns orders without AuthzIDs (the console list does not
// show them; GetOrder does).
func (s *gormStore) ListOrders(ctx context.Context, f OrderFilter, page Page) ([]Order, error) {
	db := s.r(ctx).Model(&Order{})
	switch f.Status {
	case "":
	case StatusValid: // most orders: walking the primary key finds a page soon
		db = db.Where("status = ?", f.Status)
	default:
		db = db.Where(orderUnfinished+" AND status = ?", f.Status)
	}
	if f.AccountID != "" {
		db = db.Where("account_id = ?", f.AccountID)
	}
	if q := strings.TrimSpace(f.Query); q != "" {
		pat := "%" + likeEscape(strings.ToLower(q)) + "%"
		db = db.Where(`(id = ? OR names LIKE ? ESCAPE '\')`, q, pat)
	}
	if page.After != "" {
		db = db.Where("id < ?", page.After)
	}
	var out []Order
	if err := db.Order("id DESC").Limit(limitOf(page)).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list orders: %w", mapErr(err))
	}
	for i := range out {
		normOrder(&out[i])
	}
	return out, nil
}

// BeginFinalize stamps processing_at so that RecoverProcessing can tell a
// finalize interrupted by a crash from one that is signing right now.
func (s *gormStore) BeginFinalize(ctx context.Context, orderID string) error {
	db := s.q(ctx)
	res := db.Model(&Order{}).Where("id = ? AND status = ?", orderID, StatusReady).
		Updates(map[string]any{"status": StatusProcessing, "processing_at": ts(s.now())})
	if err := casDone(db, res, "orders", orderID); err != nil {
		return fmt.Errorf("begin finalize: %w", err)
	}
	return nil
}

// CompleteFinalize moves the order first, so a lost race shows as a state
// conflict, then inserts the certificate, whose unique serial may also
// conflict; either rolls the whole transaction back.
func (s *gormStore) CompleteFinalize(ctx context.Context, orderID string, cert *Certificate, audit ...AuditEvent) error {
	if cert.ID == "" {
		cert.ID = NewID()
	}
	if cert.OrderID == "" {
		cert.OrderID = orderID
	}
	if cert.CreatedAt.IsZero() {
		cert.CreatedAt = s.now()
	}
	normCertForWrite(cert)
	err := s.tx(ctx, func(tx *gorm.DB) error {
		res, err := rawExec(tx, `UPDATE orders SET status = ?, certificate_id = ?, processing_at = NULL
			WHERE id = ? AND status IN (?, ?)`, StatusValid, cert.ID, orderID, StatusReady, StatusProcessing)
		if err := casRaw(tx, res, err, "orders", orderID); err != nil {
			return err
		}
		if err := insertCertificate(tx, cert); err != nil {
			return err
		}
		for i := range audit {
			if err := insertAudit(tx, prepareAudit(&audit[i], s.now())); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("complete finalize of order %s: %w", orderID, err)
	}
	return nil
}

func (s *gormStore) FailFinalize(ctx context.Context, orderID string, retryable bool, problemJSON string) error {
	set := map[string]any{"status": StatusReady, "processing_at": nil}
	if !retryable {
		set = map[string]any{"status": StatusInvalid, "error": problemJSON, "processing_at": nil}
	}
	db := s.q(ctx)
	res := db.Model(&Order{}).Where("id = ? AND status = ?", orderID, StatusProcessing).Updates(set)
	if err := casDone(db, res, "orders", orderID); err != nil {
		return fmt.Errorf("fail finalize: %w", err)
	}
	return nil
}

func (s *gormStore) ExpireStale(ctx context.Context, now time.Time) (int64, error) {
	now = ts(now)
	db := s.q(ctx)
	var total int64
	steps := []struct {
		what string
		run  func() *gorm.DB
	}{
		{"orders", func() *gorm.DB {
			return db.Model(&Order{}).Where(orderUnfinished+" AND status IN ? AND expires < ?", []string{StatusPending, StatusReady}, now).
				Update("status", StatusInvalid)
		}},
		{"authorizations", func() *gorm.DB {
			return db.Model(&Authorization{}).Where(authzPending+" AND expires < ?", now).
				Update("status", StatusExpired)
		}},
		{"nonces", func() *gorm.DB {
			return db.Where("expires < ?", now).Delete(&usedNonce{})
		}},
	}
	for _, st := range steps {
		res := st.run()
		if res.Error != nil {
			return total, fmt.Errorf("expire stale %s: %w", st.what, mapErr(res.Error))
		}
		total += res.RowsAffected
	}
	return total, nil
}

func (s *gormStore) RecoverProcessing(ctx context.Context, olderThan time.Time) (int64, error) {
	res := s.q(ctx).Model(&Order{}).
		Where(orderUnfinished+" AND status = ? AND (processing_at IS NULL OR processing_at < ?)", StatusProcessing, ts(olderThan)).
		Updates(map[string]any{"status": StatusReady, "processing_at": nil})
	if res.Error != nil {
		return 0, fmt.Errorf("recover processing orders: %w", mapErr(res.Error))
	}
	return res.RowsAffected, nil
}
