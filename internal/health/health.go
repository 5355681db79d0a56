// Package health answers the load balancer's two questions about a
// certmint serve process: is it alive (/healthz), and can it do its work
// now (/readyz: the database answers and the issuing key signs).
package health

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Paths served by Checker.Handler.
const (
	LivePath  = "/healthz"
	ReadyPath = "/readyz"
)

// Pinger is the database; storage.Store implements it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Checker decides readiness. Set the fields, then serve Handler.
type Checker struct {
	DB Pinger
	// Issuer returns the key that signs certificates now and its
	// certificate; readiness signs a test message with the key and checks
	// the signature against the certificate, so a key store that stopped
	// signing (an HSM session lost, say) takes the replica out of rotation.
	Issuer func() (crypto.Signer, *x509.Certificate)
	// DBTimeout bounds the database check (default 1 s).
	DBTimeout time.Duration
	// CacheFor is how long one verdict is reused (default 1 s). /readyz is
	// on the public ACME listener: without it, anyone could make every
	// replica ping the database and sign as fast as they can send.
	CacheFor time.Duration
	Logger   *slog.Logger

	mu      sync.Mutex
	checked time.Time
	err     error
}

// status is the JSON body of both endpoints.
type status struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// Handler serves LivePath and ReadyPath; any other path is next's.
func (c *Checker) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case LivePath:
			// The process serves: that is all liveness means. A database
			// outage must not make an orchestrator restart every replica.
			write(w, http.StatusOK, status{Status: "ok"})
		case ReadyPath:
			if err := c.Ready(r.Context()); err != nil {
				write(w, http.StatusServiceUnavailable, status{Status: "unavailable", Reason: err.Error()})
				return
			}
			write(w, http.StatusOK, status{Status: "ready"})
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func write(w http.ResponseWriter, code int, body status) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

// Ready returns nil when the replica can serve, or an error whose text is
// safe to send (the causes are logged, never sent: they may name hosts
// and users).
func (c *Checker) Ready(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cacheFor := c.CacheFor
	if cacheFor <= 0 {
		cacheFor = time.Second
	}
	if !c.checked.IsZero() && time.Since(c.checked) < cacheFor {
		return c.err
	}
	err := c.check(ctx)
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	switch {
	case err != nil && (c.err == nil || c.checked.IsZero()):
		log.Warn("not ready", "err", err)
	case err == nil && c.err != nil:
		log.Info("ready again")
	}
	var r *reason
	if errors.As(err, &r) {
		err = errors.New(r.public)
	}
	c.checked, c.err = time.Now(), err
	return err
}

// reason is a failed check: public is sent, cause is logged.
type reason struct {
	public string
	cause  error
}

func (r *reason) Error() string { return r.public + ": " + r.cause.Error() }
func (r *reason) Unwrap() error { return r.cause }

func (c *Checker) check(ctx context.Context) error {
	timeout := c.DBTimeout
	if timeout <= 0 {
		timeout = time.Second
	}
	dbCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := c.DB.Ping(dbCtx); err != nil {
		return &reason{fmt.Sprintf("no writable database answered within %s", timeout), err}
	}
	if c.Issuer != nil {
		if err := testSignature(c.Issuer()); err != nil {
			return &reason{"the issuing CA key cannot sign", err}
		}
	}
	return nil
}

// testSignature signs a fresh random message with key and verifies it
// against cert's public key.
func testSignature(key crypto.Signer, cert *x509.Certificate) error {
	if key == nil || cert == nil {
		return errors.New("no issuing key")
	}
	msg := make([]byte, 32)
	_, _ = rand.Read(msg)
	var (
		sig []byte
		alg x509.SignatureAlgorithm
		err error
	)
	switch key.Public().(type) {
	case ed25519.PublicKey:
		alg = x509.PureEd25519
		sig, err = key.Sign(rand.Reader, msg, crypto.Hash(0))
	default:
		alg = x509.ECDSAWithSHA256
		if cert.PublicKeyAlgorithm == x509.RSA {
			alg = x509.SHA256WithRSA
		}
		d := sha256.Sum256(msg)
		sig, err = key.Sign(rand.Reader, d[:], crypto.SHA256)
	}
	if err != nil {
		return fmt.Errorf("sign a test message: %w", err)
	}
	if err := cert.CheckSignature(alg, msg, sig); err != nil {
		return fmt.Errorf("the test signature does not verify with the issuing certificate: %w", err)
	}
	return nil
}
