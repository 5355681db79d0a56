// Package web is certmint's admin console: server-rendered pages from
// html/template and embedded, fingerprinted assets, with server-side
// sessions, CSRF tokens on every form and an audit log of every action.
package web

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/certmint/certmint/acme/revocation"
	"github.com/certmint/certmint/ca"
)

// Setting is one line of the effective configuration shown on /settings.
// Secrets must be hidden by the caller before they get here.
type Setting struct {
	Name  string
	Value string
}

// Config is what the console needs. Store and CA are required.
type Config struct {
	Store            Store
	CA               *ca.CA
	ACMEDirectoryURL string    // shown on the dashboard and in empty states
	Settings         []Setting // effective configuration, secrets hidden
	Version          string
	Logger           *slog.Logger
	Now              func() time.Time // default time.Now
	// OnRevoke is called after the console revoked a certificate, e.g. to
	// publish a fresh CRL. May be nil.
	OnRevoke func()
	// CAOps carries out the CA page's rotations; nil makes it read-only.
	CAOps CAOps

	// LoginDelay is the delay after the first failed sign-in; it doubles
	// with each further failure up to 4s (default 250ms). Tests lower it.
	LoginDelay time.Duration
	// SessionTTL is how long a sign-in lasts (default 12h).
	SessionTTL time.Duration
}

// Sign-in throttling: after lockAfter failures in a row a user name is
// locked for lockFor, on every replica (the counter is in the database).
const (
	lockAfter     = 5
	lockFor       = 15 * time.Minute
	maxLoginDelay = 4 * time.Second
	pageSize      = 50
)

type server struct {
	cfg     Config
	store   Store
	revoker *revocation.Revoker
	log     *slog.Logger
	now     func() time.Time
	pages   *pages
	assets  *assets
	sleep   func(r *http.Request, d time.Duration)
}

// New returns the console's handler. It serves plain HTTP semantics; the
// caller runs it behind TLS (the cookies are Secure).
func New(cfg Config) (http.Handler, error) {
	s, err := newServer(cfg)
	if err != nil {
		return nil, err
	}
	return s.routes(), nil
}

func newServer(cfg Config) (*server, error) {
	if cfg.Store == nil || cfg.CA == nil {
		return nil, errors.New("web: Config.Store and Config.CA are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LoginDelay <= 0 {
		cfg.LoginDelay = 250 * time.Millisecond
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	as, err := loadAssets()
	if err != nil {
		return nil, err
	}
	ps, err := loadPages(as)
	if err != nil {
		return nil, err
	}
	rv := &revocation.Revoker{Store: cfg.Store, OnRevoke: cfg.OnRevoke, Log: cfg.Logger, Now: cfg.Now}
	return &server{cfg: cfg, store: cfg.Store, revoker: rv, log: cfg.Logger, now: cfg.Now, pages: ps, assets: as, sleep: sleepCtx}, nil
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", s.assets)
	mux.HandleFunc("GET /login", s.handle(s.loginForm))
	mux.HandleFunc("POST /login", s.handle(s.login))

	auth := func(pattern string, h handlerFunc) { mux.Handle(pattern, s.requireSession(s.handle(h))) }
	auth("POST /logout", s.logout)
	auth("GET /{$}", s.dashboard)
	auth("GET /root.pem", s.rootPEM)
	auth("GET /accounts", s.accounts)
	auth("GET /accounts/{id}", s.account)
	auth("GET /accounts/{id}/deactivate", s.deactivateForm)
	auth("POST /accounts/{id}/deactivate", s.deactivate)
	auth("GET /orders", s.orders)
	auth("GET /orders/{id}", s.order)
	auth("GET /certificates", s.certificates)
	auth("GET /certificates/{id}", s.certificate)
	auth("GET /certificates/{id}/pem", s.certificatePEM)
	auth("GET /certificates/{id}/revoke", s.revokeForm)
	auth("POST /certificates/{id}/revoke", s.revoke)
	auth("GET /certificates/renew", s.patternRenewForm)
	auth("POST /certificates/renew", s.patternRenew)
	auth("GET /certificates/{id}/renew", s.certRenewForm)
	auth("POST /certificates/{id}/renew", s.certRenew)
	auth("GET /accounts/{id}/renew", s.accountRenewForm)
	auth("POST /accounts/{id}/renew", s.accountRenew)
	auth("GET /eab", s.eabKeys)
	auth("POST /eab", s.eabCreate)
	auth("GET /eab/{id}/revoke", s.eabRevokeForm)
	auth("POST /eab/{id}/revoke", s.eabRevoke)
	auth("GET /audit", s.auditPage)
	auth("GET /settings", s.settings)
	// The CA page. Every change is a POST (admin-only guards go there).
	auth("GET /ca", s.caPage)
	auth("GET /ca/bundle.pem", s.caBundle)
	auth("GET /ca/{id}/csr", s.caCSR)
	auth("GET /ca/rotate/intermediate", s.caConfirm("intermediate"))
	auth("POST /ca/rotate/intermediate", s.caRotateIntermediate)
	auth("GET /ca/rotate/root", s.caConfirm("root"))
	auth("POST /ca/rotate/root", s.caRotateRoot)
	auth("GET /ca/{id}/switch", s.caConfirm("switch"))
	auth("POST /ca/{id}/switch", s.caSwitch)
	auth("POST /ca/import", s.caImport)

	// Profiling (issue 8): only for signed-in operators.
	mux.Handle("GET /debug/pprof/", s.requireSession(http.HandlerFunc(pprof.Index)))
	mux.Handle("GET /debug/pprof/cmdline", s.requireSession(http.HandlerFunc(pprof.Cmdline)))
	mux.Handle("GET /debug/pprof/profile", s.requireSession(http.HandlerFunc(pprof.Profile)))
	mux.Handle("GET /debug/pprof/symbol", s.requireSession(http.HandlerFunc(pprof.Symbol)))
	mux.Handle("GET /debug/pprof/trace", s.requireSession(http.HandlerFunc(pprof.Trace)))

	// Anything else: signed-in users get a 404 page, others the sign-in.
	mux.Handle("/", s.requireSession(s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return errNotFound
	})))
	return securityHeaders(s.csrf(mux))
}

// securityHeaders is the one wrapper every response passes through.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}
