// Package crl publishes the intermediate CA's certificate revocation list
// (RFC 5280 §5) over plain HTTP. Every replica serves the same list: the
// signed CRL and its number counter live in the database, a revocation on
// any replica reaches the list within seconds, and the list is re-signed
// well before its nextUpdate even when nothing is revoked.
package crl

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/certmint/certmint/ca"
)

// Store keeps what CRL publishing (RFC 5280 §5) shares between replicas:
// the CRL number counter, the last signed CRL, and a cheap fingerprint of
// the revocation state that tells a replica whether the stored CRL is
// still current. storage implements it.
type Store interface {
	// NextCRLNumber atomically allocates the next CRL number of issuer
	// (1, 2, 3 ...). Numbers never repeat, across restarts and replicas,
	// as RFC 5280 §5.2.3 requires.
	NextCRLNumber(ctx context.Context, issuer string) (int64, error)
	// SaveCRL stores c as issuer's current CRL unless a CRL with the same
	// or a higher number is stored already; it reports whether c was
	// stored.
	SaveCRL(ctx context.Context, c *CRL) (bool, error)
	// GetCRL returns issuer's stored CRL, or nil and no error when there
	// is none. DER is only filled when the stored Number is greater than
	// newerThan, so a replica polling for changes reads a few bytes, not
	// the whole list.
	GetCRL(ctx context.Context, issuer string, newerThan int64) (*CRL, error)
	// RevocationState returns a short fingerprint of the set of revoked
	// certificates that changes whenever a certificate is revoked. It is
	// comparable only with other values from the same database.
	RevocationState(ctx context.Context) (string, error)
	// ListRevoked returns every revoked certificate that has not expired
	// before notAfterSince, in serial order.
	ListRevoked(ctx context.Context, notAfterSince time.Time) ([]Revoked, error)
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

// Revoked is what a CRL entry needs of a revoked certificate.
type Revoked struct {
	CertificateID string // for logs
	Serial        string // lowercase hex
	RevokedAt     *time.Time
	Reason        int // RFC 5280 §5.3.1 reason code
}

// Options tune a Publisher. The zero value is fine: every field has a
// default.
type Options struct {
	// Validity is nextUpdate - thisUpdate of each CRL (default 24h).
	Validity time.Duration
	// Refresh is how old a CRL may get before it is re-signed without
	// any revocation (default Validity/3), so that clients always hold a
	// list whose nextUpdate is far ahead, even across an outage.
	Refresh time.Duration
	// Poll is how often Run checks the database for revocations made
	// elsewhere (other replicas, offline tools) and for a newer CRL signed
	// by another replica (default 2s). Each poll is two small queries.
	Poll time.Duration
	// Debounce is how long Run waits after Notify before re-signing, so a
	// burst of revocations yields one CRL (default 200ms).
	Debounce time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Validity <= 0 {
		o.Validity = 24 * time.Hour
	}
	if o.Refresh <= 0 || o.Refresh >= o.Validity {
		o.Refresh = o.Validity / 3
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.Debounce <= 0 {
		o.Debounce = 200 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Publisher keeps the current CRL in memory and serves it (see Handler).
// It is safe for concurrent use.
type Publisher struct {
	store  Store
	iss    *ca.Issuer // the intermediate that signs this list
	issuer string     // key of the stored CRL and its counter: the intermediate's SKI
	// listRevoked lists what goes on the list: the certificates iss
	// signed (ListRevokedBy) when a Set runs it.
	listRevoked func(ctx context.Context, notAfterSince time.Time) ([]Revoked, error)
	opts        Options
	log         *slog.Logger
	notify      chan struct{}

	refreshMu sync.Mutex // one Refresh at a time in this process
	failing   bool       // guarded by refreshMu: log failures once per streak

	mu  sync.RWMutex
	cur *published
}

// published is one signed CRL with what serving it needs.
type published struct {
	der, pem   []byte
	number     int64
	thisUpdate time.Time
	nextUpdate time.Time
	state      string // Store.RevocationState the list was built from
	entries    int
}

// newPublisher returns a Publisher for one issuer; Set makes one per
// intermediate. Call Run to keep the list current; until the first
// Refresh, Handler answers 503.
func newPublisher(store Store, iss *ca.Issuer, list func(context.Context, time.Time) ([]Revoked, error), opts Options) (*Publisher, error) {
	if iss == nil || iss.Cert == nil || len(iss.Cert.SubjectKeyId) == 0 {
		return nil, errors.New("crl: intermediate certificate has no subject key identifier")
	}
	opts = opts.withDefaults()
	return &Publisher{
		store:       store,
		iss:         iss,
		issuer:      hex.EncodeToString(iss.Cert.SubjectKeyId),
		listRevoked: list,
		opts:        opts,
		log:         opts.Logger.With("component", "crl", "issuer", iss.Cert.Subject.CommonName, "issuer_id", iss.ID),
		notify:      make(chan struct{}, 1),
	}, nil
}

// Notify asks Run to re-sign the CRL now (after Debounce), e.g. from the
// ACME server's and the console's OnRevoke. It never blocks.
func (p *Publisher) Notify() {
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

// Run refreshes the CRL at once, then on every Notify and every Poll,
// until ctx is done. Failures (a database outage) are logged and retried
// at the next poll; the last good CRL stays served meanwhile.
func (p *Publisher) Run(ctx context.Context) {
	runLoop(ctx, p.opts, p.notify, p.refreshLogged)
}

// runLoop calls refresh at once, then on every notify (after
// opts.Debounce, so a burst of revocations yields one run) and every
// opts.Poll, until ctx is done.
func runLoop(ctx context.Context, opts Options, notify chan struct{}, refresh func(context.Context)) {
	refresh(ctx)
	t := time.NewTicker(opts.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-notify:
			d := time.NewTimer(opts.Debounce)
			select {
			case <-ctx.Done():
				d.Stop()
				return
			case <-d.C:
			}
			select { // revocations during the wait are in this run
			case <-notify:
			default:
			}
		}
		refresh(ctx)
	}
}

func (p *Publisher) refreshLogged(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := p.Refresh(rctx)
	p.refreshMu.Lock()
	defer p.refreshMu.Unlock()
	switch {
	case err != nil && ctx.Err() == nil && !p.failing:
		p.failing = true
		p.log.Warn("CRL refresh failed; serving the last CRL and retrying", "err", err)
	case err == nil && p.failing:
		p.failing = false
		p.log.Info("CRL refresh works again")
	}
}

// Refresh brings the in-memory CRL up to date once: it adopts a newer CRL
// stored by another replica, and signs a new one when the revocation state
// changed or the current list is older than Refresh.
func (p *Publisher) Refresh(ctx context.Context) error {
	p.refreshMu.Lock()
	defer p.refreshMu.Unlock()
	if err := p.adoptStored(ctx); err != nil {
		return err
	}
	state, err := p.store.RevocationState(ctx)
	if err != nil {
		return fmt.Errorf("crl: %w", err)
	}
	now := p.opts.Now()
	if cur := p.current(); cur != nil && cur.state == state && now.Before(cur.thisUpdate.Add(p.opts.Refresh)) {
		return nil
	}
	return p.publish(ctx, now, state)
}

// adoptStored serves the stored CRL if it is newer than the one in memory.
func (p *Publisher) adoptStored(ctx context.Context) error {
	var mine int64
	if cur := p.current(); cur != nil {
		mine = cur.number
	}
	stored, err := p.store.GetCRL(ctx, p.issuer, mine)
	switch {
	case err == nil && stored == nil:
		return nil
	case err != nil:
		return fmt.Errorf("crl: %w", err)
	case stored.Number <= mine:
		return nil
	}
	list, err := x509.ParseRevocationList(stored.DER)
	if err != nil {
		return fmt.Errorf("crl: stored CRL %d: %w", stored.Number, err)
	}
	if err := list.CheckSignatureFrom(p.iss.Cert); err != nil {
		return fmt.Errorf("crl: stored CRL %d is not signed by this intermediate: %w", stored.Number, err)
	}
	p.set(&published{der: stored.DER, number: stored.Number, thisUpdate: stored.ThisUpdate,
		nextUpdate: stored.NextUpdate, state: stored.State, entries: len(list.RevokedCertificateEntries)})
	return nil
}

// publish signs, stores and serves a new CRL. The revocation state was
// read before the list, so a revocation racing with this run is at worst
// listed early and re-signed once more, never missed.
func (p *Publisher) publish(ctx context.Context, now time.Time, state string) error {
	thisUpdate := now.UTC().Truncate(time.Second) // CRL times have second precision
	nextUpdate := thisUpdate.Add(p.opts.Validity)
	revoked, err := p.listRevoked(ctx, thisUpdate)
	if err != nil {
		return fmt.Errorf("crl: %w", err)
	}
	entries := make([]x509.RevocationListEntry, 0, len(revoked))
	for _, c := range revoked {
		e, err := entry(c, thisUpdate)
		if err != nil {
			p.log.Error("revoked certificate left out of the CRL", "certificate", c.CertificateID, "err", err)
			continue
		}
		entries = append(entries, e)
	}
	number, err := p.store.NextCRLNumber(ctx, p.issuer)
	if err != nil {
		return fmt.Errorf("crl: %w", err)
	}
	der, err := ca.IssuerCRL(p.iss, entries, big.NewInt(number), thisUpdate, nextUpdate)
	if err != nil {
		return fmt.Errorf("crl: sign: %w", err)
	}
	saved, err := p.store.SaveCRL(ctx, &CRL{Issuer: p.issuer, Number: number,
		ThisUpdate: thisUpdate, NextUpdate: nextUpdate, State: state, DER: der})
	if err != nil {
		return fmt.Errorf("crl: %w", err)
	}
	if !saved { // another replica stored a higher number meanwhile: serve that
		return p.adoptStored(ctx)
	}
	p.set(&published{der: der, number: number, thisUpdate: thisUpdate, nextUpdate: nextUpdate,
		state: state, entries: len(entries)})
	p.log.Info("CRL published", "number", number, "entries", len(entries), "next_update", nextUpdate)
	return nil
}

// entry turns a revoked certificate into a CRL entry. The reasonCode
// extension (RFC 5280 §5.3.1) is left out for unspecified (0), as the RFC
// recommends, and for values the RFC does not define.
func entry(c Revoked, fallback time.Time) (x509.RevocationListEntry, error) {
	serial, ok := new(big.Int).SetString(c.Serial, 16)
	if !ok || serial.Sign() <= 0 {
		return x509.RevocationListEntry{}, fmt.Errorf("bad serial %q", c.Serial)
	}
	at := fallback
	if c.RevokedAt != nil {
		at = c.RevokedAt.UTC()
	}
	e := x509.RevocationListEntry{SerialNumber: serial, RevocationTime: at}
	switch r := c.Reason; {
	case r >= 1 && r <= 6, r >= 8 && r <= 10: // 7 is unused (§5.3.1)
		e.ReasonCode = r
	}
	return e, nil
}

func (p *Publisher) current() *published {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.cur
}

func (p *Publisher) set(c *published) {
	c.pem = pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: c.der})
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil || c.number > p.cur.number {
		p.cur = c
	}
}

// NextUpdate is the nextUpdate of the CRL being served (RFC 5280 §5.1.2.5),
// for monitoring; false before the first successful Refresh.
func (p *Publisher) NextUpdate() (time.Time, bool) {
	if cur := p.current(); cur != nil {
		return cur.nextUpdate, true
	}
	return time.Time{}, false
}
