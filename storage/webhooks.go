package storage

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/internal/audit"
	"github.com/certmint/certmint/internal/webhook"
)

// webhookEndpointRow is a receiver of events. The secret keys the HMAC of
// every body sent to it; it is read by the dispatcher only and never
// listed (WebhookEndpoint has no field for it).
type webhookEndpointRow struct {
	ID        string    `gorm:"primaryKey;size:64"`
	URL       string    `gorm:"type:text;not null"`
	Secret    string    `gorm:"type:text;not null"`
	Events    string    `gorm:"size:255;not null"` // webhook.ParseEvents form; "" for all
	CreatedBy string    `gorm:"size:255"`
	CreatedAt time.Time `gorm:"not null"`
}

func (webhookEndpointRow) TableName() string { return "webhook_endpoints" }

// webhookDeliveryRow is one event on its way to one endpoint: the outbox.
// A pending row is due at NextAttemptAt; a dispatcher claims it by moving
// NextAttemptAt one lease ahead in a conditional update, so one replica
// sends it while a crashed one's claim simply runs out.
type webhookDeliveryRow struct {
	ID            string    `gorm:"primaryKey;size:64"`
	EventID       string    `gorm:"size:64;not null;index"`
	EventType     string    `gorm:"size:64;not null"`
	EndpointID    string    `gorm:"size:64;not null;index"`
	Body          string    `gorm:"type:text;not null"`
	Status        string    `gorm:"size:16;not null"` // partial index idx_deliveries_due (0013)
	Attempts      int       `gorm:"not null"`
	NextAttemptAt time.Time `gorm:"not null"`
	LeaseHolder   string    `gorm:"size:255"`
	LastCode      int       `gorm:"not null"`
	LastError     string    `gorm:"type:text"`
	CreatedAt     time.Time `gorm:"not null;index"`
	DeliveredAt   *time.Time
}

func (webhookDeliveryRow) TableName() string { return "webhook_deliveries" }

// webhookMarkRow remembers that an event was sent for Key until Until:
// the rate limit of validation.failed and the once-a-day ca.expiring.
// Name is the event type and what it is about ("validation.failed/ACCOUNT/NAME").
type webhookMarkRow struct {
	Name  string    `gorm:"primaryKey;size:255"`
	Until time.Time `gorm:"not null"`
}

func (webhookMarkRow) TableName() string { return "webhook_marks" }

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
	// deliveryPending is the condition of idx_deliveries_due, repeated
	// verbatim by the queries it serves.
	deliveryPending = "status = 'pending'"
)

// WebhookEndpoint is an endpoint as listed: never its secret.
type WebhookEndpoint struct {
	ID        string
	URL       string
	Events    string // comma separated; "" for all
	CreatedBy string
	CreatedAt time.Time
}

// WebhookDelivery is one delivery as the console and the dispatcher see
// it; its type belongs to the dispatcher's package.
type WebhookDelivery = webhook.Delivery

// WebhookStore keeps endpoints and the delivery outbox.
type WebhookStore interface {
	AddWebhook(ctx context.Context, url, secret, events string, e audit.Event) (*WebhookEndpoint, error)
	ListWebhooks(ctx context.Context) ([]WebhookEndpoint, error)
	// RemoveWebhook deletes the endpoint; its undelivered events fail.
	RemoveWebhook(ctx context.Context, id string, e audit.Event) error
	// ListDeliveries pages deliveries newest first; status "" for all.
	ListDeliveries(ctx context.Context, status string, page Page) ([]WebhookDelivery, error)
	// ClaimDeliveries takes up to limit due deliveries for holder until
	// now+lease, with their endpoint's URL and secret.
	ClaimDeliveries(ctx context.Context, holder string, now time.Time, lease time.Duration, limit int) ([]WebhookDelivery, error)
	// FinishDelivery records an attempt by holder: delivered when
	// errText is "", else retried at retryAt, or failed when retryAt is zero.
	FinishDelivery(ctx context.Context, id, holder string, code int, errText string, now, retryAt time.Time) error
	// NotifyOverdue queues renewal.overdue for lineages that turned
	// overdue by now; see the storage implementation.
	NotifyOverdue(ctx context.Context, now time.Time) (int, error)
	// EmitOnce queues an event unless one with key was queued before
	// now (rate limits and daily reminders); it reports whether it did.
	EmitOnce(ctx context.Context, key string, every time.Duration, typ string, data any, now time.Time) (bool, error)
}

// enqueueEvent writes one delivery of a new event per endpoint that wants
// it, in the caller's transaction: the outbox. With no endpoints it
// writes nothing.
func enqueueEvent(tx *gorm.DB, typ string, data any, now time.Time) error {
	var eps []webhookEndpointRow
	if err := tx.Select("id, events").Find(&eps).Error; err != nil {
		return fmt.Errorf("read webhook endpoints: %w", err)
	}
	var rows []webhookDeliveryRow
	var ev webhook.Event
	for _, ep := range eps {
		if !webhook.Wants(ep.Events, typ) {
			continue
		}
		if ev.ID == "" {
			var err error
			if ev, err = webhook.New(typ, data, now); err != nil {
				return err
			}
		}
		rows = append(rows, webhookDeliveryRow{ID: acme.NewID(), EventID: ev.ID, EventType: typ, EndpointID: ep.ID,
			Body: string(ev.Body), Status: DeliveryPending, NextAttemptAt: ts(now), CreatedAt: ts(now)})
	}
	if len(rows) == 0 {
		return nil
	}
	return tx.Create(&rows).Error
}

// EmitOnce claims the mark key (a new row, or an old one whose time ran
// out, both conditional) and queues the event in the same transaction.
func (s *gormStore) EmitOnce(ctx context.Context, key string, every time.Duration, typ string, data any, now time.Time) (bool, error) {
	now = ts(now)
	claimed := false
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var err error
		if claimed, err = claimMark(tx, key, every, now); err != nil || !claimed {
			return err
		}
		return enqueueEvent(tx, typ, data, now)
	})
	if err != nil {
		return false, fmt.Errorf("emit %s event: %w", typ, err)
	}
	return claimed, nil
}

// claimMark takes the mark key until now+every: a new row, or an old one
// whose time ran out, both conditional, so one of several replicas wins.
func claimMark(tx *gorm.DB, key string, every time.Duration, now time.Time) (bool, error) {
	res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&webhookMarkRow{Name: key, Until: now.Add(every)})
	if res.Error != nil {
		return false, res.Error
	}
	if res.RowsAffected == 0 {
		res = tx.Model(&webhookMarkRow{}).Where("name = ? AND until <= ?", key, now).Update("until", now.Add(every))
		if res.Error != nil {
			return false, res.Error
		}
	}
	return res.RowsAffected > 0, nil
}

func (s *gormStore) AddWebhook(ctx context.Context, url, secret, events string, e audit.Event) (*WebhookEndpoint, error) {
	row := webhookEndpointRow{ID: acme.NewID(), URL: url, Secret: secret, Events: events, CreatedBy: e.Actor, CreatedAt: ts(s.now())}
	if e.Target == "" {
		e.Target = audit.Webhook(row.ID)
	}
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		return tx.Create(auditRowOf(e, s.now())).Error
	})
	if err != nil {
		return nil, fmt.Errorf("add webhook: %w", err)
	}
	return row.toModel(), nil
}

func (r *webhookEndpointRow) toModel() *WebhookEndpoint {
	return &WebhookEndpoint{ID: r.ID, URL: r.URL, Events: r.Events, CreatedBy: r.CreatedBy, CreatedAt: utc(r.CreatedAt)}
}

func (s *gormStore) ListWebhooks(ctx context.Context) ([]WebhookEndpoint, error) {
	var rows []webhookEndpointRow
	if err := s.r(ctx).Select("id, url, events, created_by, created_at").Order("id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list webhooks: %w", mapErr(err))
	}
	out := make([]WebhookEndpoint, len(rows))
	for i := range rows {
		out[i] = *rows[i].toModel()
	}
	return out, nil
}

func (s *gormStore) RemoveWebhook(ctx context.Context, id string, e audit.Event) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		res := tx.Where("id = ?", id).Delete(&webhookEndpointRow{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("webhook %s: %w", id, ErrNotFound)
		}
		if err := tx.Model(&webhookDeliveryRow{}).Where(deliveryPending+" AND endpoint_id = ?", id).
			Updates(map[string]any{"status": DeliveryFailed, "last_error": "endpoint removed"}).Error; err != nil {
			return err
		}
		return tx.Create(auditRowOf(e, s.now())).Error
	})
	if err != nil {
		return fmt.Errorf("remove webhook: %w", err)
	}
	return nil
}

func (s *gormStore) ListDeliveries(ctx context.Context, status string, page Page) ([]WebhookDelivery, error) {
	db := s.r(ctx).Model(&webhookDeliveryRow{})
	if status != "" {
		db = db.Where("status = ?", status)
	}
	if page.After != "" {
		db = db.Where("id < ?", page.After)
	}
	var rows []webhookDeliveryRow
	if err := db.Order("id DESC").Limit(limitOf(page)).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list webhook deliveries: %w", mapErr(err))
	}
	eps, err := s.ListWebhooks(ctx)
	if err != nil {
		return nil, err
	}
	urls := map[string]string{}
	for _, ep := range eps {
		urls[ep.ID] = ep.URL
	}
	out := make([]WebhookDelivery, len(rows))
	for i := range rows {
		out[i] = rows[i].toModel()
		out[i].EndpointURL = urls[rows[i].EndpointID]
	}
	return out, nil
}

func (r *webhookDeliveryRow) toModel() WebhookDelivery {
	return WebhookDelivery{ID: r.ID, EventID: r.EventID, EventType: r.EventType, EndpointID: r.EndpointID,
		Body: []byte(r.Body), Status: r.Status, Attempts: r.Attempts, NextAttemptAt: utc(r.NextAttemptAt),
		LastCode: r.LastCode, LastError: r.LastError, CreatedAt: utc(r.CreatedAt), DeliveredAt: utcp(r.DeliveredAt)}
}

func (s *gormStore) ClaimDeliveries(ctx context.Context, holder string, now time.Time, lease time.Duration, limit int) ([]WebhookDelivery, error) {
	now = ts(now)
	var due []webhookDeliveryRow
	if err := s.r(ctx).Where(deliveryPending+" AND next_attempt_at <= ?", now).Order("next_attempt_at").Limit(limit).Find(&due).Error; err != nil {
		return nil, fmt.Errorf("find due webhook deliveries: %w", mapErr(err))
	}
	var out []WebhookDelivery
	secrets := map[string]*webhookEndpointRow{}
	for _, d := range due {
		res := s.q(ctx).Model(&webhookDeliveryRow{}).
			Where(deliveryPending+" AND id = ? AND attempts = ? AND next_attempt_at <= ?", d.ID, d.Attempts, now).
			Updates(map[string]any{"next_attempt_at": now.Add(lease), "lease_holder": holder, "attempts": d.Attempts + 1})
		if res.Error != nil {
			return out, fmt.Errorf("claim webhook delivery %s: %w", d.ID, mapErr(res.Error))
		}
		if res.RowsAffected == 0 {
			continue // another replica has it
		}
		ep, ok := secrets[d.EndpointID]
		if !ok {
			var rows []webhookEndpointRow
			if err := s.q(ctx).Where("id = ?", d.EndpointID).Limit(1).Find(&rows).Error; err != nil {
				return out, fmt.Errorf("read webhook endpoint %s: %w", d.EndpointID, mapErr(err))
			}
			if len(rows) == 1 {
				ep = &rows[0]
			}
			secrets[d.EndpointID] = ep
		}
		m := d.toModel()
		m.Attempts++
		if ep == nil {
			_ = s.FinishDelivery(ctx, d.ID, holder, 0, "endpoint removed", now, time.Time{})
			continue
		}
		m.EndpointURL, m.Secret = ep.URL, []byte(ep.Secret)
		out = append(out, m)
	}
	return out, nil
}

func (s *gormStore) FinishDelivery(ctx context.Context, id, holder string, code int, errText string, now, retryAt time.Time) error {
	u := map[string]any{"last_code": code, "last_error": errText}
	switch {
	case errText == "":
		u["status"], u["delivered_at"] = DeliveryDelivered, ts(now)
	case retryAt.IsZero():
		u["status"] = DeliveryFailed
	default:
		u["next_attempt_at"] = ts(retryAt)
	}
	err := s.q(ctx).Model(&webhookDeliveryRow{}).Where(deliveryPending+" AND id = ? AND lease_holder = ?", id, holder).Updates(u).Error
	if err != nil {
		return fmt.Errorf("record webhook delivery %s: %w", id, mapErr(err))
	}
	return nil
}
