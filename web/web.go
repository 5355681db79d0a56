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

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/certmint/certmint/acme/revocation"
	"github.com/certmint/certmint/ca"
)

// Setting is one line of the effective configuration shown on /settings.
// Secrets must be hidden by the caller before they get here.
type Setting struct {
	Name  string
	Value string
	// Source is where the value came from: flag, environment, file
	// (--config) or default; empty for values that are not options.
	Source string
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
	// RootFile (the absolute path of DATA/ca/root.pem) and HTTP01Port (the
	// port http-01 validation connects to) complete the dashboard's
	// first-certificate commands (internal/quickstart).
	RootFile   string
	HTTP01Port int
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

	// OIDC turns on sign-in through an OpenID provider; nil leaves it off.
	OIDC *OIDCConfig
	// NoLocalLogin turns off sign-in with a local user's password
	// (--local-login=false); then only the OpenID provider signs in.
	NoLocalLogin bool
	// LongestValidity is the longest profile's certificate lifetime: the
	// span of the dashboard's expiry timeline (default 30 days).
	LongestValidity time.Duration
	// AuditKey returns the audit seal key, so the Audit page checks the
	// seals' MACs too; nil (or a nil key) leaves them unchecked.
	AuditKey func() []byte
	// TrustDomain is the SPIFFE trust domain of workload identities
	// (serve --trust-domain); the zero value: none.
	TrustDomain spiffeid.TrustDomain
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
	oidc    *oidcClient // nil without Config.OIDC
	chain   chainCheck  // the Audit page's verification of the seals
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
	if cfg.NoLocalLogin && cfg.OIDC == nil {
		return nil, errors.New("web: local sign-in is turned off and no OpenID provider is configured: nobody could sign in")
	}
	rv := &revocation.Revoker{Store: cfg.Store, OnRevoke: cfg.OnRevoke, Log: cfg.Logger, Now: cfg.Now}
	s := &server{cfg: cfg, store: cfg.Store, revoker: rv, log: cfg.Logger, now: cfg.Now, pages: ps, assets: as, sleep: sleepCtx}
	if cfg.OIDC != nil {
		if s.oidc, err = newOIDCClient(*cfg.OIDC, cfg.Logger); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", s.assets)
	mux.HandleFunc("GET /login", s.handle(s.loginForm))
	mux.HandleFunc("POST /login", s.handle(s.login))

	mux.HandleFunc("GET /oidc/login", s.handle(s.oidcLogin))
	mux.HandleFunc("GET /oidc/callback", s.handle(s.oidcCallback))

	// Every signed-in route names the least role it needs (issue 20):
	// viewer reads, operator acts on certificates, accounts and EAB keys,
	// admin manages users and settings. See requireRole.
	auth := func(pattern string, need Role, h handlerFunc) {
		mux.Handle(pattern, s.requireSession(s.handle(s.requireRole(need, h))))
	}
	auth("POST /logout", RoleViewer, s.logout)
	auth("GET /{$}", RoleViewer, s.dashboard)
	auth("GET /root.pem", RoleViewer, s.rootPEM)
	auth("GET /accounts", RoleViewer, s.accounts)
	auth("GET /accounts/{id}", RoleViewer, s.account)
	auth("GET /accounts/{id}/deactivate", RoleOperator, s.deactivateForm)
	auth("POST /accounts/{id}/deactivate", RoleOperator, s.deactivate)
	auth("GET /orders", RoleViewer, s.orders)
	auth("GET /orders/{id}", RoleViewer, s.order)
	auth("GET /authz/{id}", RoleViewer, s.authz)
	auth("GET /certificates", RoleViewer, s.certificates)
	auth("GET /certificates/{id}", RoleViewer, s.certificate)
	auth("GET /certificates/{id}/pem", RoleViewer, s.certificatePEM)
	auth("GET /certificates/{id}/revoke", RoleOperator, s.revokeForm)
	auth("POST /certificates/{id}/revoke", RoleOperator, s.revoke)
	auth("GET /certificates/renew", RoleOperator, s.patternRenewForm)
	auth("POST /certificates/renew", RoleOperator, s.patternRenew)
	auth("GET /certificates/{id}/renew", RoleOperator, s.certRenewForm)
	auth("POST /certificates/{id}/renew", RoleOperator, s.certRenew)
	auth("GET /accounts/{id}/renew", RoleOperator, s.accountRenewForm)
	auth("POST /accounts/{id}/renew", RoleOperator, s.accountRenew)
	auth("GET /eab", RoleViewer, s.eabKeys)
	auth("POST /eab", RoleOperator, s.eabCreate)
	auth("GET /eab/{id}/revoke", RoleOperator, s.eabRevokeForm)
	auth("POST /eab/{id}/revoke", RoleOperator, s.eabRevoke)
	auth("GET /inventory", RoleViewer, s.inventory)
	auth("GET /webhooks", RoleAdmin, s.webhooks)
	auth("POST /webhooks", RoleAdmin, s.webhookAdd)
	auth("POST /webhooks/{id}/remove", RoleAdmin, s.webhookRemove)
	// The CA page: reading is for every role, every change is a POST for
	// admins (issue 20's roles).
	auth("GET /ca", RoleViewer, s.caPage)
	auth("GET /ca/bundle.pem", RoleViewer, s.caBundle)
	auth("GET /ca/{id}/csr", RoleAdmin, s.caCSR)
	auth("GET /ca/rotate/intermediate", RoleAdmin, s.caConfirm("intermediate"))
	auth("POST /ca/rotate/intermediate", RoleAdmin, s.caRotateIntermediate)
	auth("GET /ca/rotate/root", RoleAdmin, s.caConfirm("root"))
	auth("POST /ca/rotate/root", RoleAdmin, s.caRotateRoot)
	auth("GET /ca/{id}/switch", RoleAdmin, s.caConfirm("switch"))
	auth("POST /ca/{id}/switch", RoleAdmin, s.caSwitch)
	auth("POST /ca/import", RoleAdmin, s.caImport)
	auth("GET /audit", RoleViewer, s.auditPage)
	auth("GET /audit/export", RoleViewer, s.auditExport)
	auth("GET /settings", RoleAdmin, s.settings)
	auth("GET /password", RoleViewer, s.passwordForm)
	auth("POST /password", RoleViewer, s.passwordChange)
	auth("GET /users", RoleAdmin, s.users)
	auth("POST /users", RoleAdmin, s.userAdd)
	auth("GET /users/{name}", RoleAdmin, s.user)
	auth("POST /users/{name}", RoleAdmin, s.userUpdate)

	// Profiling (issue 8): only for signed-in admins.
	for _, p := range []struct {
		path string
		h    http.HandlerFunc
	}{{"/", pprof.Index}, {"/cmdline", pprof.Cmdline}, {"/profile", pprof.Profile}, {"/symbol", pprof.Symbol}, {"/trace", pprof.Trace}} {
		h := p.h
		auth("GET /debug/pprof"+p.path, RoleAdmin, func(w http.ResponseWriter, r *http.Request) error { h(w, r); return nil })
	}

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
