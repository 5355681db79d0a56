// Package acme is the server side of ACME (RFC 8555): wire types,
// problems, nonces, request authentication, the handlers and the order
// state machine. It signs through package ca and keeps state through
// package storage; validation runs in acme/validate.
package acme

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/certmint/certmint/acme/policy"
	"github.com/certmint/certmint/acme/ratelimit"
	"github.com/certmint/certmint/acme/revocation"
	"github.com/certmint/certmint/acme/validate"
	"github.com/certmint/certmint/ca"
)

// Config is the ACME server's policy. Zero values take the defaults noted.
type Config struct {
	// OnBundleFetch, when set, is told which account (by the ID in the
	// Certmint-Account header agents send) fetched /roots/bundle.pem, for
	// the console's view of who has the current roots. The header is the
	// agent's own report, not authenticated: it informs, it grants nothing.
	OnBundleFetch func(ctx context.Context, accountID, remoteAddr string)
	// Profiles are the issuance profiles offered (draft-ietf-acme-profiles);
	// DefaultProfile names the one used when an order names none.
	Profiles       map[string]ca.Profile
	DefaultProfile string

	TermsOfService string // URL; when set, newAccount needs termsOfServiceAgreed
	EABRequired    bool   // newAccount needs an external account binding (RFC 8555 §7.3.4)

	// Policy limits the identifiers of the whole server; an EAB key's own
	// allow list narrows it further for the accounts bound with it.
	Policy      policy.Rules
	NoWildcards bool          // refuse wildcard names
	MaxValidity time.Duration // cap on any certificate's lifetime; 0 = the profiles' own
	Website     string

	OrderLifetime      time.Duration // pending order lifetime, default 24h
	AuthzLifetime      time.Duration // pending authorization lifetime, default 24h
	ValidAuthzLifetime time.Duration // valid authorization lifetime, default 30 days
	ReuseAuthz         bool          // reuse a still-valid authorization of the account
	MaxIdentifiers     int           // identifiers per order, default 100
	MaxPendingAuthzs   int           // pending authorizations per account, default 1000
	MaxBody            int64         // request body cap, default 64 KiB
	NonceLifetime      time.Duration // default 1h
	ValidationWorkers  int           // validations at once, default 32
	ValidationQueue    int           // validations waiting, default 4096
	CRLURL             string        // CRL distribution point put in certificates
	OnRevoke           func()        // called after a revocation, e.g. to republish the CRL
	CRLHandler         http.Handler  // serves /crl/ on the ACME listener too, if set

	// Limiter enforces RateLimits; nil turns rate limiting off.
	Limiter    *ratelimit.Limiter
	RateLimits ratelimit.Config

	// TrustDomain names the SPIFFE trust domain of workload identities
	// (spiffe://TRUST-DOMAIN/PATH); the zero value: none, and no
	// /spiffe/bundle.
	TrustDomain spiffeid.TrustDomain

	// DNSPersistIssuers are the issuer domain names of dns-persist-01
	// (draft-ietf-acme-dns-persist §3.1); none leaves the challenge off.
	DNSPersistIssuers []string

	// BaseURL is how clients reach the server ("https://host:port"); it is
	// only used outside requests, to resume validations after a restart.
	BaseURL string

	// Observer is told of every request and validation (metrics); nil
	// observes nothing.
	Observer Observer

	Logger *slog.Logger
	Now    func() time.Time
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.OrderLifetime, 24*time.Hour)
	def(&c.AuthzLifetime, 24*time.Hour)
	def(&c.ValidAuthzLifetime, 30*24*time.Hour)
	def(&c.NonceLifetime, time.Hour)
	if c.MaxIdentifiers <= 0 {
		c.MaxIdentifiers = 100
	}
	if c.MaxPendingAuthzs <= 0 {
		c.MaxPendingAuthzs = 1000
	}
	if c.MaxBody <= 0 {
		c.MaxBody = 64 << 10
	}
	if c.ValidationWorkers <= 0 {
		c.ValidationWorkers = 32
	}
	if c.ValidationQueue <= 0 {
		c.ValidationQueue = 4096
	}
	if len(c.Profiles) == 0 {
		p := ca.DefaultProfile()
		c.Profiles = map[string]ca.Profile{p.Name: p}
	}
	if c.MaxValidity > 0 {
		capped := make(map[string]ca.Profile, len(c.Profiles))
		for name, p := range c.Profiles {
			p.Validity = min(p.Validity, c.MaxValidity)
			capped[name] = p
		}
		c.Profiles = capped
	}
	if c.DefaultProfile == "" {
		c.DefaultProfile = ca.DefaultProfile().Name
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
}

// Validator checks a challenge (RFC 8555 §8): nil when it is satisfied, a
// *validate.Error when the applicant failed it. *validate.Validator is the
// real one; the interface lets handler tests validate without a network.
type Validator interface {
	Validate(ctx context.Context, r validate.Request) error
	// ValidatePersist checks a dns-persist-01 challenge and returns the
	// record that satisfied it (draft-ietf-acme-dns-persist §4.2).
	ValidatePersist(ctx context.Context, r validate.Request) (*validate.PersistMatch, error)
}

// Server is the ACME HTTP API. Create it with New, serve Handler.
type Server struct {
	cfg       Config
	store     Store
	ca        *ca.CA
	validator Validator
	nonces    *Nonces
	revoker   *revocation.Revoker
	pool      *validationPool
	echo      *echo.Echo
	log       *slog.Logger
	observer  Observer
	now       func() time.Time
}

// New builds the server and its routes. The validation pool starts
// working at once; Close stops it.
func New(ctx context.Context, cfg Config, store Store, authority *ca.CA, v Validator) (*Server, error) {
	cfg.setDefaults()
	if _, ok := cfg.Profiles[cfg.DefaultProfile]; !ok {
		return nil, fmt.Errorf("default profile %q is not among the configured profiles", cfg.DefaultProfile)
	}
	nonces, err := NewNonces(ctx, store, cfg.NonceLifetime, cfg.Now, store.Shared())
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, store: store, ca: authority, validator: v, nonces: nonces,
		log: cfg.Logger, observer: cfg.Observer, now: cfg.Now,
		revoker: &revocation.Revoker{Store: store, OnRevoke: cfg.OnRevoke, Log: cfg.Logger, Now: cfg.Now},
	}
	s.pool = newValidationPool(cfg.ValidationWorkers, cfg.ValidationQueue)
	s.echo = s.routes()
	return s, nil
}

// Handler returns the HTTP handler for the ACME listener.
func (s *Server) Handler() http.Handler { return s.echo }

// Close waits for running validations to finish.
func (s *Server) Close() { s.pool.close() }

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	// The client address is the TCP peer: forwarding headers are not
	// trusted, since anyone can send them.
	e.IPExtractor = echo.ExtractIPDirect()
	e.Use(s.observe, s.commonHeaders, s.recoverPanic)

	e.GET(directoryPath, s.directory)
	e.HEAD(newNoncePath, s.newNonce)
	e.GET(newNoncePath, s.newNonce)
	e.GET("/roots/root.pem", s.rootPEM)
	// Every root to trust now (the contract in ARCHITECTURE.md): during a
	// root rotation's overlap, the old and the new root.
	e.GET("/roots/bundle.pem", s.bundlePEM)
	// The same roots as a SPIFFE bundle, for workload identities.
	e.GET("/spiffe/bundle", s.spiffeBundle)
	e.GET("/acme/renewal-info/:id", s.renewalInfo)
	if s.cfg.CRLHandler != nil {
		e.GET("/crl/*", echo.WrapHandler(s.cfg.CRLHandler))
	}

	post := func(path string, h handlerFunc, opt authOpts) {
		// Other methods get 405 with Allow (RFC 9110 §15.5.6) as a problem
		// document; without this the catch-all below answers 404.
		e.Any(path, methodNotAllowed)
		e.POST(path, s.authenticated(h, opt))
	}
	post("/acme/new-account", s.newAccount, authOpts{jwkOnly: true})
	post("/acme/account/:id", s.account, authOpts{})
	post("/acme/account/:id/orders", s.accountOrders, authOpts{})
	post("/acme/key-change", s.keyChange, authOpts{})
	post("/acme/new-order", s.newOrder, authOpts{})
	post("/acme/order/:id", s.getOrder, authOpts{})
	post("/acme/order/:id/finalize", s.finalize, authOpts{})
	post("/acme/authz/:id", s.authz, authOpts{})
	post("/acme/chall/:id", s.challenge, authOpts{})
	post("/acme/cert/:id", s.certificate, authOpts{})
	post("/acme/revoke-cert", s.revokeCert, authOpts{jwkOrKid: true})
	post("/acme/new-authz", s.newAuthz, authOpts{})

	// Anything else: a problem document, not echo's plain 404/405.
	e.RouteNotFound("/*", func(c echo.Context) error { return NotFound("resource " + c.Request().URL.Path) })
	return e
}

// Paths that commonHeaders treats apart.
const (
	directoryPath = "/acme/directory"
	newNoncePath  = "/acme/new-nonce"
)

func methodNotAllowed(c echo.Context) error {
	c.Response().Header().Set("Allow", http.MethodPost)
	return problem(http.StatusMethodNotAllowed, "malformed", "method %s is not allowed on %s; use POST (RFC 8555 §6.3)",
		c.Request().Method, c.Request().URL.Path)
}

// commonHeaders sets the headers ACME responses carry: a fresh
// Replay-Nonce on every answer to a POST, errors included (RFC 8555 §6.5),
// and on newNonce (§7.2), and nowhere else: Ruby's acme-client fails on a
// nonce in the directory response (Pebble and step-ca dropped theirs for
// that); and the directory link on every resource but the directory
// itself (§7.1). Minting a nonce costs no database write.
func (s *Server) commonHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		req := c.Request()
		if req.Method == http.MethodPost || req.URL.Path == newNoncePath {
			h.Set("Replay-Nonce", s.nonces.New())
		}
		if req.URL.Path != directoryPath {
			h.Add("Link", link(s.baseURL(c)+directoryPath, "index"))
		}
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Strict-Transport-Security", "max-age=31536000")
		return next(c)
	}
}

// recoverPanic turns a panic in a handler into serverInternal, so no
// panic reaches a client and the cause is logged.
func (s *Server) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = ServerInternal(fmt.Errorf("panic: %v", r))
			}
		}()
		return next(c)
	}
}

// handleError renders every error as application/problem+json (RFC 8555
// §6.7). Only the problem is sent; the internal cause is logged.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var p *Problem
	var he *echo.HTTPError
	switch {
	case errors.As(err, &p):
	case errors.As(err, &he):
		p = problem(he.Code, "malformed", "%s", http.StatusText(he.Code))
		if he.Code == http.StatusMethodNotAllowed {
			p.Detail = "method " + c.Request().Method + " is not allowed on " + c.Request().URL.Path
		}
	default:
		p = ServerInternal(err)
	}
	id := requestID(c)
	if p.Status >= 500 {
		s.log.Error("acme request failed", "request_id", id, "method", c.Request().Method, "path", c.Request().URL.Path,
			"problem", p.Type, "err", p.Err)
	}
	c.Set(ctxProblem, p.Type)
	if id != "" {
		// The id goes in the detail too, since that is what clients print.
		q := *p
		if q.Instance == "" { // userActionRequired's is the URL to visit (RFC 8555 §7.3.3)
			q.Instance = requestInstance + id
		}
		q.Detail += " (request " + id + ")"
		p = &q
	}
	h := c.Response().Header()
	if p.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((p.RetryAfter+time.Second-1)/time.Second)))
	}
	if p.Location != "" {
		h.Set("Location", p.Location)
	}
	h.Set(echo.HeaderContentType, "application/problem+json")
	c.Response().WriteHeader(p.Status)
	if c.Request().Method != http.MethodHead {
		_ = writeJSONBody(c.Response(), p)
	}
}

func link(url, rel string) string { return "<" + url + `>;rel="` + rel + `"` }

// baseURL is the scheme and host the client used. ACME URLs are built from
// it so that the `url` header check (RFC 8555 §6.4) compares like with like.
func (s *Server) baseURL(c echo.Context) string {
	return "https://" + c.Request().Host
}
