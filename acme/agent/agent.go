// Package agent keeps a certificate from a certmint (or any ACME) server
// fresh for the service that embeds it, on the lego library: it registers
// once, obtains the first certificate, renews it when ACME Renewal
// Information (RFC 9773) says so or at 2/3 of its lifetime, and serves it
// through tls.Configs for mutual TLS that trust only the CA's root.
package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/certmint/certmint/internal/atomicfile"
	"github.com/go-acme/lego/v4/lego"
)

// Agent obtains and renews one certificate. Its methods are safe for
// concurrent use.
type Agent struct {
	cfg   Config
	root  *x509.Certificate
	roots *x509.CertPool
	log   logger

	mu            sync.Mutex
	current       *tls.Certificate
	bundle        []*x509.Certificate // every root trusted; root is the first
	bundleChanged bool

	// Owned by the goroutine that renews (Start, then the loop).
	client     *lego.Client
	acct       *user
	ariOffered bool
	renewAt    time.Time // chosen renewal time of the current certificate
	ariCheckAt time.Time // when to ask for renewal information again
	failures   int
	retryAt    time.Time
	started    bool
}

// New checks cfg, creates the state directory and resolves the trusted
// root (for a pinned fingerprint this may fetch it from the server once).
// It does not contact the server otherwise.
func New(cfg Config) (*Agent, error) {
	cfg.Names = append([]string(nil), cfg.Names...)
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	var pin string
	if cfg.RootFingerprint != "" {
		pin, _ = parseFingerprint(cfg.RootFingerprint)
	}
	a := &Agent{cfg: cfg, log: logger{cfg.Logger}}
	bundle := loadStoredBundle(cfg.StateDir, nil, pin)
	if cfg.RootFile != "" || bundle == nil {
		root, err := loadRoot(&cfg)
		if err != nil {
			return nil, err
		}
		if bundle = loadStoredBundle(cfg.StateDir, root, ""); bundle == nil {
			bundle = []*x509.Certificate{root}
		}
	}
	if err := a.setBundle(bundle); err != nil {
		return nil, err
	}
	a.takeBundleChanged()
	if err := a.writePin(); err != nil {
		return nil, err
	}
	return a, nil
}

// storeRoot keeps root.pem in the state directory, writing only when it
// changed.
func (a *Agent) storeRoot() error {
	path := filepath.Join(a.cfg.StateDir, fileRoot)
	data := encodeCerts(a.Bundle()...)
	if old, err := os.ReadFile(path); err == nil && string(old) == string(data) {
		return nil
	}
	return atomicfile.Write(path, data, 0o644)
}

// Root is the trusted CA root: the oldest of the bundle.
func (a *Agent) Root() *x509.Certificate {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.root
}

// Roots is a pool holding the roots of the bundle.
func (a *Agent) Roots() *x509.CertPool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.roots
}

// Current is the certificate in use (leaf parsed into Leaf, chain
// included), or nil before Start succeeded.
func (a *Agent) Current() *tls.Certificate {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.current
}

// ServerTLSConfig serves the current certificate on every handshake and
// requires a client certificate that chains to the root.
func (a *Agent) ServerTLSConfig() *tls.Config { return ServerTLSConfig(a.Current, a.Roots()) }

// ClientTLSConfig presents the current certificate when a server asks for
// one and trusts only the root.
func (a *Agent) ClientTLSConfig() *tls.Config { return ClientTLSConfig(a.Current, a.Roots()) }

// Start makes sure a usable certificate is there, then keeps it fresh in
// the background until ctx ends. It reuses the stored certificate unless it
// is missing, expired, for other names or from another root; otherwise it
// obtains one and returns its error. A due renewal that fails while the
// old certificate is still valid is not an error: it is retried.
func (a *Agent) Start(ctx context.Context) error {
	if a.started {
		return errors.New("agent already started")
	}
	a.started = true
	if _, err := a.ensure(ctx); err != nil {
		if a.Current() == nil {
			return err
		}
		a.failed(err)
	}
	go a.loop(ctx)
	return nil
}

// RunOnce obtains or renews once, as `certmint agent --once` does, and
// reports whether a new certificate was stored. A failed renewal is an
// error even if the old certificate is still valid.
func (a *Agent) RunOnce(ctx context.Context) (renewed bool, err error) {
	renewed, err = a.ensure(ctx)
	if err == nil {
		// Keep the bundle current too (a failure to fetch it is logged:
		// the certificate matters more). Start does this in its loop, so
		// a service starts serving without waiting for it.
		a.refreshBundleLogged(ctx)
	}
	return renewed, err
}

// ensure loads the stored certificate and renews it when it is unusable
// or due.
func (a *Agent) ensure(ctx context.Context) (bool, error) {
	cert, err := loadCert(a.cfg.StateDir, a.cfg.Names, a.Root())
	now := a.cfg.Now()
	switch {
	case err != nil && !errors.Is(err, os.ErrNotExist):
		a.log.Info("stored certificate not usable, obtaining a new one", "reason", err.Error())
	case err == nil && !now.Before(cert.Leaf.NotAfter):
		a.log.Info("stored certificate expired, obtaining a new one", "not_after", cert.Leaf.NotAfter)
	case err == nil:
		a.setCurrent(cert)
		at, renew := a.plan(ctx)
		if !renew || at.After(now) {
			a.log.Debug("reusing stored certificate", "not_after", cert.Leaf.NotAfter, "renew_at", at)
			a.emit(ActionUnchanged, at)
			return false, nil
		}
	}
	if err := a.obtain(ctx); err != nil {
		return false, err
	}
	return true, nil
}

func (a *Agent) setCurrent(c *tls.Certificate) {
	a.mu.Lock()
	a.current = c
	a.mu.Unlock()
	a.renewAt, a.ariCheckAt = time.Time{}, time.Time{}
}
