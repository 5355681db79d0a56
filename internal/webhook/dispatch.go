package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Delivery is one event on its way to one endpoint, as the store queues
// it. Secret is filled only for deliveries claimed for sending.
type Delivery struct {
	ID            string
	EventID       string
	EventType     string
	EndpointID    string
	EndpointURL   string
	Body          []byte
	Secret        []byte
	Status        string
	Attempts      int
	NextAttemptAt time.Time
	LastCode      int
	LastError     string
	CreatedAt     time.Time
	DeliveredAt   *time.Time
}

// Store is the outbox as the dispatcher needs it. Implementations make
// ClaimDeliveries a conditional write, so that several dispatchers (one
// per replica) never hold one delivery at the same time.
type Store interface {
	// ClaimDeliveries takes up to limit due deliveries for holder until
	// now+lease; an unfinished claim (a crash) runs out and the delivery
	// is due again.
	ClaimDeliveries(ctx context.Context, holder string, now time.Time, lease time.Duration, limit int) ([]Delivery, error)
	// FinishDelivery records an attempt: delivered when errText is "",
	// else due again at retryAt, or failed for good when retryAt is zero.
	FinishDelivery(ctx context.Context, id, holder string, code int, errText string, now, retryAt time.Time) error
}

// Dispatcher sends the queued deliveries. Each replica runs one; they
// share the work through the store's claims.
type Dispatcher struct {
	Store  Store
	Client *http.Client // its dialer applies the address policy (validate.PolicyDialer)
	Holder string       // this replica's name in claims
	// RetryBase is the first retry's delay; each further one doubles, up
	// to an hour, until GiveUp after the event was queued (a day).
	RetryBase time.Duration
	GiveUp    time.Duration
	Poll      time.Duration // how often the outbox is read
	// Sweeps run before each poll: they queue events that come from the
	// passing of time (renewal.overdue, ca.expiring).
	Sweeps []func(ctx context.Context, now time.Time)
	Logger *slog.Logger
	Now    func() time.Time
}

const (
	batch       = 32
	parallel    = 8
	sendTimeout = 10 * time.Second
	maxBackoff  = time.Hour
)

// Run polls until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Poll <= 0 {
		d.Poll = 2 * time.Second
	}
	t := time.NewTicker(d.Poll)
	defer t.Stop()
	for {
		d.Once(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once runs the sweeps and sends what is due, until nothing is.
func (d *Dispatcher) Once(ctx context.Context) {
	for _, sweep := range d.Sweeps {
		sweep(ctx, d.Now())
	}
	for ctx.Err() == nil {
		// The lease covers a whole batch sent parallel at a time.
		lease := 2 * sendTimeout * (batch/parallel + 1)
		ds, err := d.Store.ClaimDeliveries(ctx, d.Holder, d.Now(), lease, batch)
		if err != nil {
			d.Logger.Warn("webhook: read the outbox", "err", err)
			return
		}
		if len(ds) == 0 {
			return
		}
		sem := make(chan struct{}, parallel)
		var wg sync.WaitGroup
		for _, del := range ds {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				d.deliver(ctx, del)
			}()
		}
		wg.Wait()
	}
}

// deliver sends one delivery and records the outcome. Only a 2xx answer
// counts; redirects are not followed (a receiver that moved is told so by
// its failures in the console, not silently followed elsewhere).
func (d *Dispatcher) deliver(ctx context.Context, del Delivery) {
	code, err := d.send(ctx, del)
	now := d.Now()
	errText, retryAt := "", time.Time{}
	if err != nil {
		errText = err.Error()
		if next := now.Add(d.backoff(del.Attempts)); next.Sub(del.CreatedAt) < d.giveUp() {
			retryAt = next
		}
		d.Logger.Warn("webhook delivery failed", "event", del.EventID, "type", del.EventType, "endpoint", del.EndpointID,
			"attempt", del.Attempts, "status", code, "err", errText, "retry_at", retryAt)
	} else {
		d.Logger.Info("webhook delivered", "event", del.EventID, "type", del.EventType, "endpoint", del.EndpointID, "attempt", del.Attempts)
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if ferr := d.Store.FinishDelivery(fctx, del.ID, d.Holder, code, errText, now, retryAt); ferr != nil {
		d.Logger.Warn("webhook: record the delivery", "delivery", del.ID, "err", ferr)
	}
}

func (d *Dispatcher) send(ctx context.Context, del Delivery) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, del.EndpointURL, bytes.NewReader(del.Body))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "certmint-webhook")
	req.Header.Set(SignatureHeader, Sign(del.Secret, del.Body))
	req.Header.Set(EventIDHeader, del.EventID)
	req.Header.Set(EventTypeHeader, del.EventType)
	req.Header.Set("Certmint-Delivery-Attempt", strconv.Itoa(del.Attempts))
	resp, err := d.Client.Do(req)
	if err != nil {
		var uerr interface{ Unwrap() error }
		if errors.As(err, &uerr) {
			err = uerr.Unwrap() // drop "Post URL:": the URL is on the row already
		}
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("the receiver answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}

// backoff is the delay after the attempt-th failure.
func (d *Dispatcher) backoff(attempt int) time.Duration {
	b := d.RetryBase
	if b <= 0 {
		b = 30 * time.Second
	}
	for i := 1; i < attempt && b < maxBackoff; i++ {
		b *= 2
	}
	return min(b, maxBackoff)
}

func (d *Dispatcher) giveUp() time.Duration {
	if d.GiveUp <= 0 {
		return 24 * time.Hour
	}
	return d.GiveUp
}

// NewClient is the dispatcher's HTTP client: it dials through dialer
// (whose Control hook applies the validation address policy), trusts
// roots (nil: the system's), uses no proxy and follows no redirects.
func NewClient(dialer *net.Dialer, roots *x509.CertPool) *http.Client {
	tr := &http.Transport{
		DialContext:         dialer.DialContext,
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: sendTimeout,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     time.Minute,
	}
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
