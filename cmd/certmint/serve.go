package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/acme/policy"
	"github.com/certmint/certmint/acme/ratelimit"
	"github.com/certmint/certmint/acme/validate"
	"github.com/certmint/certmint/ca"
	"github.com/certmint/certmint/ca/crl"
	"github.com/certmint/certmint/storage"
)

// serveOptions is the validated configuration of `certmint serve`.
type serveOptions struct {
	Data          string
	DB            string
	Listen        string
	AdminListen   string
	Hostnames     []string
	HTTP01Port    int
	TLSALPN01Port int
	DNSResolver   string
	RootName      string
	TOS           string
	ReuseAuthz    bool
	LogLevel      string
	Passphrase    []byte
	ProfileSpecs  []string
	EABRequired   bool
	AllowDomains  []string
	DenyDomains   []string
	AllowIPs      []string
	DenyIPs       []string
	NoWildcards   bool
	MaxValidity   time.Duration
	Policy        policy.Rules
	DefaultProf   string
	Profiles      map[string]ca.Profile
	Limits        limitOptions
	CRLListen     string
	CRLURL        string
	RateLimitsOn  bool
	RateSpecs     map[string]*string
	RateLimits    ratelimit.Config
}

// limitOptions are the resource limits of `serve`, all with defaults that
// suit a normal fleet.
type limitOptions struct {
	MaxBody             int64
	MaxIdentifiers      int
	MaxPendingAuthzs    int
	ValidationWorkers   int
	ValidationTimeout   time.Duration
	ValidationAllow     []string
	ValidationDeny      []string
	allowNets, denyNets []netip.Prefix
	ReadHeaderTimeout   time.Duration
	ReadTimeout         time.Duration
	WriteTimeout        time.Duration
	IdleTimeout         time.Duration
	MaxHeaderBytes      int
	DBMaxConns          int
	DBStatementTimeout  time.Duration
}

func newServeCmd() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the ACME server and the admin console",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			return serve(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Data, "data", "./certmint-data", "directory for CA keys, the server's TLS certificate and the SQLite database")
	f.StringVar(&o.DB, "db", "", "database: empty for SQLite in --data, or postgres://user:pass@host:5432/db")
	f.StringVar(&o.Listen, "listen", ":8443", "address of the ACME API (HTTPS)")
	f.StringVar(&o.AdminListen, "admin-listen", "127.0.0.1:8444", "address of the admin console (HTTPS)")
	f.StringSliceVar(&o.Hostnames, "hostname", nil, "names and IPs in the server's TLS certificate (default localhost,127.0.0.1 and the host name)")
	f.IntVar(&o.HTTP01Port, "http01-port", 80, "port that http-01 validation connects to")
	f.IntVar(&o.TLSALPN01Port, "tlsalpn01-port", 443, "port that tls-alpn-01 validation connects to")
	f.StringVar(&o.DNSResolver, "dns-resolver", "", "DNS server (host:port) for validation look-ups (default: system)")
	f.StringVar(&o.RootName, "ca-name", "certmint Root CA", "common name of the root CA, used when it is first created")
	f.StringVar(&o.TOS, "tos-url", "", "terms of service URL; when set, new accounts must agree to it")
	f.BoolVar(&o.ReuseAuthz, "reuse-authz", false, "reuse an account's still-valid authorizations in new orders")
	f.StringVar(&o.LogLevel, "log-level", "info", "debug, info, warn or error")
	f.StringSliceVar(&o.ProfileSpecs, "profile", nil, "issuance profile NAME=VALIDITY[:server+client], repeatable (e.g. short=48h)")
	f.StringVar(&o.DefaultProf, "default-profile", "default", "profile used when an order names none")
	f.BoolVar(&o.EABRequired, "eab-required", false, "new accounts need an external account binding (keys: certmint admin eab create)")
	f.StringSliceVar(&o.AllowDomains, "allow-domain", nil, "DNS suffix names must be under (repeatable; default: any)")
	f.StringSliceVar(&o.DenyDomains, "deny-domain", nil, "DNS suffix no name may be under (repeatable)")
	f.StringSliceVar(&o.AllowIPs, "allow-ip", nil, "CIDR IP identifiers must be in (repeatable; default: any)")
	f.StringSliceVar(&o.DenyIPs, "deny-ip", nil, "CIDR no IP identifier may be in (repeatable)")
	f.BoolVar(&o.NoWildcards, "no-wildcards", false, "refuse wildcard names")
	f.DurationVar(&o.MaxValidity, "max-validity", 0, "cap on every certificate's lifetime, e.g. 720h (default: the profiles' own)")
	f.StringVar(&o.CRLListen, "crl-listen", ":8880", "address of the plain-HTTP CRL endpoint (/crl/intermediate.crl); empty turns it off")
	f.StringVar(&o.CRLURL, "crl-url", "", "CRL distribution point put in certificates (default http://<first --hostname>:<crl port>/crl/intermediate.crl)")
	f.BoolVar(&o.RateLimitsOn, "rate-limits", true, "enforce the rate limits below (false turns all off, e.g. for benchmarks)")
	def := ratelimit.DefaultConfig()
	o.RateSpecs = map[string]*string{}
	for _, r := range []struct {
		flag string
		rule ratelimit.Rule
		what string
	}{
		{"rate-limit-new-account-per-ip", def.NewAccountPerIP, "new accounts per client IP"},
		{"rate-limit-new-order-per-account", def.NewOrderPerAccount, "new orders per account"},
		{"rate-limit-new-order-per-ip", def.NewOrderPerIP, "new orders per client IP"},
		{"rate-limit-failed-validations-per-account", def.FailedValidationsPerAccount, "failed validations per account"},
		{"rate-limit-failed-validations-per-ip", def.FailedValidationsPerIP, "failed validations per client IP"},
	} {
		o.RateSpecs[r.flag] = f.String(r.flag, fmt.Sprintf("%d/%s", r.rule.Limit, shortDuration(r.rule.Window)), r.what+", as N/DURATION; 0 turns it off")
	}
	l := &o.Limits
	f.Int64Var(&l.MaxBody, "max-body", 64<<10, "largest ACME request body in bytes")
	f.IntVar(&l.MaxIdentifiers, "max-identifiers", 100, "identifiers per order")
	f.IntVar(&l.MaxPendingAuthzs, "max-pending-authzs", 1000, "pending authorizations per account")
	f.IntVar(&l.ValidationWorkers, "validation-workers", 32, "validations at once")
	f.DurationVar(&l.ValidationTimeout, "validation-timeout", 10*time.Second, "time limit of one validation")
	f.StringSliceVar(&l.ValidationAllow, "validation-allow-net", nil, "CIDR validation may connect to; when set, only these (repeatable)")
	f.StringSliceVar(&l.ValidationDeny, "validation-deny-net", nil, "CIDR validation never connects to, besides link-local and metadata addresses (repeatable)")
	f.DurationVar(&l.ReadHeaderTimeout, "read-header-timeout", 10*time.Second, "time to read a request's headers")
	f.DurationVar(&l.ReadTimeout, "read-timeout", 30*time.Second, "time to read a whole request")
	f.DurationVar(&l.WriteTimeout, "write-timeout", 60*time.Second, "time to write a response")
	f.DurationVar(&l.IdleTimeout, "idle-timeout", 120*time.Second, "keep-alive idle time")
	f.IntVar(&l.MaxHeaderBytes, "max-header-bytes", 32<<10, "largest request header block")
	f.IntVar(&l.DBMaxConns, "db-max-conns", 20, "Postgres connection pool size")
	f.DurationVar(&l.DBStatementTimeout, "db-statement-timeout", 10*time.Second, "Postgres statement timeout")
	return cmd
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %q (see --help)", cmd.CommandPath(), args)
	}
	return nil
}

// validate checks the configuration once, before anything is created, so
// a bad value stops start-up with a message naming the key.
func (o *serveOptions) validate() error {
	if o.Data == "" {
		return usagef("--data must name a directory")
	}
	for name, addr := range map[string]string{"--listen": o.Listen, "--admin-listen": o.AdminListen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return usagef("%s %q is not host:port (e.g. :8443 or 127.0.0.1:8444)", name, addr)
		}
	}
	for name, p := range map[string]int{"--http01-port": o.HTTP01Port, "--tlsalpn01-port": o.TLSALPN01Port} {
		if p < 1 || p > 65535 {
			return usagef("%s %d is not a port number (1-65535)", name, p)
		}
	}
	if o.DNSResolver != "" {
		if _, err := netip.ParseAddrPort(o.DNSResolver); err != nil {
			return usagef("--dns-resolver %q must be ip:port, e.g. 127.0.0.1:53", o.DNSResolver)
		}
	}
	if o.DB != "" && !strings.HasPrefix(o.DB, "postgres://") && !strings.HasPrefix(o.DB, "postgresql://") && !strings.HasPrefix(o.DB, "sqlite:") {
		return usagef("--db %q is not a database URL; use postgres://user:pass@host:5432/db or sqlite:/path/file.db", redactDSN(o.DB))
	}
	if len(o.Hostnames) == 0 {
		o.Hostnames = []string{"localhost", "127.0.0.1"}
		if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
			o.Hostnames = append(o.Hostnames, strings.ToLower(h))
		}
	}
	switch o.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return usagef("--log-level %q must be debug, info, warn or error", o.LogLevel)
	}
	if err := policy.CheckSuffixes(append(append([]string(nil), o.AllowDomains...), o.DenyDomains...)); err != nil {
		return usagef("--allow-domain/--deny-domain: %v", err)
	}
	allowIPs, err := policy.ParsePrefixes(o.AllowIPs)
	if err != nil {
		return usagef("--allow-ip: %v", err)
	}
	denyIPs, err := policy.ParsePrefixes(o.DenyIPs)
	if err != nil {
		return usagef("--deny-ip: %v", err)
	}
	o.Policy = policy.Rules{AllowDomains: lower(o.AllowDomains), DenyDomains: lower(o.DenyDomains), AllowIPs: allowIPs, DenyIPs: denyIPs}
	if o.MaxValidity < 0 || (o.MaxValidity > 0 && o.MaxValidity < time.Minute) {
		return usagef("--max-validity %s must be at least 1m", o.MaxValidity)
	}
	if err := o.Limits.validate(); err != nil {
		return err
	}
	if err := o.parseRateLimits(); err != nil {
		return err
	}
	if o.CRLListen != "" {
		_, port, err := net.SplitHostPort(o.CRLListen)
		if err != nil {
			return usagef("--crl-listen %q is not host:port (e.g. :8880)", o.CRLListen)
		}
		if o.CRLURL == "" {
			host := o.Hostnames[0]
			o.CRLURL = "http://" + net.JoinHostPort(host, port) + crl.DERPath
		}
	}
	if o.CRLURL != "" && !strings.HasPrefix(o.CRLURL, "http://") {
		return usagef("--crl-url %q must be an http:// URL (RFC 5280 CRLs are fetched over plain HTTP)", o.CRLURL)
	}
	profiles, err := parseProfiles(o.ProfileSpecs)
	if err != nil {
		return err
	}
	if _, ok := profiles[o.DefaultProf]; !ok {
		return usagef("--default-profile %q is not a configured profile", o.DefaultProf)
	}
	o.Profiles = profiles
	if p := os.Getenv("CERTMINT_CA_PASSPHRASE"); p != "" {
		o.Passphrase = []byte(p)
	}
	return nil
}

// redactDSN hides the password of a database URL in messages.
func redactDSN(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		if at := strings.LastIndex(dsn, "@"); at > i {
			if colon := strings.Index(dsn[i+3:at], ":"); colon >= 0 {
				return dsn[:i+3+colon+1] + "xxxxx" + dsn[at:]
			}
		}
	}
	return dsn
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// serve starts everything and runs until SIGINT or SIGTERM.
func serve(parent context.Context, o serveOptions) error {
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := newLogger(o.LogLevel)
	slog.SetDefault(log)

	app, err := openApp(ctx, o, log)
	if err != nil {
		return err
	}
	defer app.close()
	return app.run(ctx)
}

// app is a running certmint server: its CA, store and listeners.
type app struct {
	opts     serveOptions
	log      *slog.Logger
	ca       *ca.CA
	identity *ca.ServerIdentity
	store    storage.Store
	acme     *acme.Server
	crl      *crl.Publisher
	limiter  *ratelimit.Limiter
	holder   string
}

// openApp opens the data directory, CA and database. On a first start that
// fails part-way it removes what it created, so nothing is half-written.
func openApp(ctx context.Context, o serveOptions, log *slog.Logger) (a *app, err error) {
	created, err := ensureDataDir(o.Data)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && created {
			_ = os.RemoveAll(o.Data)
		}
	}()
	dsn := o.DB
	if dsn == "" {
		dsn = filepath.Join(o.Data, "certmint.db")
	}
	openCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	store, err := storage.Open(openCtx, dsn, storage.Options{Logger: log,
		MaxOpenConns: o.Limits.DBMaxConns, StatementTimeout: o.Limits.DBStatementTimeout})
	if err != nil {
		return nil, usagef("cannot open the database: %v", err)
	}
	defer func() {
		if err != nil {
			store.Close()
		}
	}()
	authority, err := ca.Open(ca.Options{Dir: filepath.Join(o.Data, "ca"), Passphrase: o.Passphrase, RootName: o.RootName, Logger: log})
	switch {
	case errors.Is(err, ca.ErrBadPassphrase):
		return nil, usagef("the CA keys in %s are encrypted and CERTMINT_CA_PASSPHRASE is missing or wrong", filepath.Join(o.Data, "ca"))
	case errors.Is(err, ca.ErrInsecureKeyFile):
		return nil, usagef("%v", err)
	case err != nil:
		return nil, usagef("cannot open the CA in %s: %v", filepath.Join(o.Data, "ca"), err)
	}
	// Replicas must share one CA: the first start records the root in the
	// database, and a replica with other CA files is refused.
	stored, err := store.InitSetting(ctx, "ca.root-sha256", authority.RootFingerprint())
	if err != nil {
		return nil, fmt.Errorf("record the CA root in the database: %w", err)
	}
	if stored != authority.RootFingerprint() {
		return nil, usagef("the database belongs to the CA with root SHA-256 %s, but %s holds root %s; every replica must use the same CA files (copy DATA/ca from the first one)",
			stored, filepath.Join(o.Data, "ca"), authority.RootFingerprint())
	}
	identity, err := authority.ServerIdentity(filepath.Join(o.Data, "tls"), o.Hostnames)
	if err != nil {
		return nil, usagef("cannot set up the server's TLS certificate for --hostname %v: %v", o.Hostnames, err)
	}
	if err := ensureAdmin(ctx, store, o.Data, log); err != nil {
		return nil, err
	}
	pub, err := crl.New(store, authority, crl.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("set up CRL publishing: %w", err)
	}
	var limiter *ratelimit.Limiter
	if o.RateLimitsOn {
		limiter = ratelimit.New(store, nil)
	}
	v := validate.New(validate.Config{HTTPPort: o.HTTP01Port, TLSALPNPort: o.TLSALPN01Port, Resolver: o.DNSResolver,
		Timeout: o.Limits.ValidationTimeout, Allowed: o.Limits.allowNets, Denied: o.Limits.denyNets})
	srv, err := acme.New(ctx, acme.Config{
		TermsOfService:    o.TOS,
		Profiles:          o.Profiles,
		EABRequired:       o.EABRequired,
		Policy:            o.Policy,
		NoWildcards:       o.NoWildcards,
		MaxValidity:       o.MaxValidity,
		MaxBody:           o.Limits.MaxBody,
		MaxIdentifiers:    o.Limits.MaxIdentifiers,
		MaxPendingAuthzs:  o.Limits.MaxPendingAuthzs,
		ValidationWorkers: o.Limits.ValidationWorkers,
		BaseURL:           baseURL(o),
		CRLURL:            o.CRLURL,
		CRLHandler:        pub.Handler(),
		OnRevoke:          pub.Notify,
		Limiter:           limiter,
		RateLimits:        o.RateLimits,
		DefaultProfile:    o.DefaultProf,
		ReuseAuthz:        o.ReuseAuthz,
		Logger:            log,
	}, store, authority, v)
	if err != nil {
		return nil, fmt.Errorf("start the ACME server: %w", err)
	}
	host, _ := os.Hostname()
	return &app{opts: o, log: log, ca: authority, identity: identity, store: store, acme: srv, crl: pub, limiter: limiter,
		holder: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), storage.NewID())}, nil
}

// ensureDataDir creates the data directory (0700) and checks that it is
// writable; created reports whether this call made it.
func ensureDataDir(dir string) (created bool, err error) {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return false, usagef("cannot create the data directory --data %s: %v", dir, errors.Unwrap(err))
		}
		created = true
	}
	probe, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return created, usagef("the data directory --data %s is not writable: %v", dir, errors.Unwrap(err))
	}
	probe.Close()
	os.Remove(probe.Name())
	return created, nil
}

func (a *app) close() {
	a.acme.Close()
	a.store.Close()
}

// run serves the listeners and the background jobs until ctx ends.
func (a *app) run(ctx context.Context) error {
	tlsCfg := &tls.Config{GetCertificate: a.identity.GetCertificate, MinVersion: tls.VersionTLS12}
	acmeLn, err := net.Listen("tcp", a.opts.Listen)
	if err != nil {
		return fmt.Errorf("listen on --listen %s: %w", a.opts.Listen, errors.Unwrap(err))
	}
	servers := []*http.Server{a.newHTTPServer(a.acme.Handler(), tlsCfg)}
	listeners := []net.Listener{acmeLn}
	if h := a.adminHandler(); h != nil {
		adminLn, err := net.Listen("tcp", a.opts.AdminListen)
		if err != nil {
			acmeLn.Close()
			return fmt.Errorf("listen on --admin-listen %s: %w", a.opts.AdminListen, errors.Unwrap(err))
		}
		servers = append(servers, a.newHTTPServer(h, tlsCfg))
		listeners = append(listeners, adminLn)
	}
	var crlSrv *http.Server
	if a.opts.CRLListen != "" {
		crlLn, err := net.Listen("tcp", a.opts.CRLListen)
		if err != nil {
			for _, ln := range listeners {
				ln.Close()
			}
			return fmt.Errorf("listen on --crl-listen %s: %w", a.opts.CRLListen, errors.Unwrap(err))
		}
		crlSrv = a.newHTTPServer(a.crl.Handler(), nil)
		servers = append(servers, crlSrv)
		listeners = append(listeners, crlLn)
	}
	go a.identity.Run(ctx)
	go a.crl.Run(ctx)
	go a.backgroundJobs(ctx)
	errc := make(chan error, len(servers))
	for i, s := range servers {
		go func(s *http.Server, ln net.Listener) {
			if s.TLSConfig == nil {
				errc <- s.Serve(ln) // the CRL: plain HTTP, as RFC 5280 clients expect
				return
			}
			errc <- s.ServeTLS(ln, "", "")
		}(s, listeners[i])
	}
	a.log.Info("certmint serving", "acme", "https://"+acmeLn.Addr().String()+"/acme/directory",
		"admin", a.opts.AdminListen, "root_sha256", a.ca.RootFingerprint())
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("server stopped: %w", err)
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(shutCtx)
	}
	return nil
}

// newHTTPServer applies the connection limits every listener shares.
func (a *app) newHTTPServer(h http.Handler, tlsCfg *tls.Config) *http.Server {
	l := a.opts.Limits
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
}

// backgroundJobs resumes validations a restart cut short, then runs the
// sweeper once per cluster: only the replica that holds the "sweeper"
// lease works, the others wait.
func (a *app) backgroundJobs(ctx context.Context) {
	if n, err := a.acme.ResumeValidations(ctx); err == nil && n > 0 {
		a.log.Info("resumed validations cut short by a restart", "challenges", n)
	}
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		a.sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweep expires stale objects and returns orders a crashed replica left in
// processing to ready (signing is synchronous, so a minute is long dead).
func (a *app) sweep(ctx context.Context) {
	ok, err := a.store.AcquireLease(ctx, "sweeper", a.holder, time.Now(), 90*time.Second)
	if err != nil || !ok {
		return
	}
	if n, err := a.store.RecoverProcessing(ctx, time.Now().Add(-time.Minute)); err == nil && n > 0 {
		a.log.Info("recovered orders left processing", "orders", n)
	}
	if a.limiter != nil {
		_, _ = a.limiter.Sweep(ctx)
	}
	if n, err := a.store.ExpireStale(ctx, time.Now()); err != nil {
		a.log.Warn("sweep failed", "err", err)
	} else if n > 0 {
		a.log.Debug("swept stale objects", "rows", n)
	}
}

// baseURL is the ACME base URL for work done outside a request.
func baseURL(o serveOptions) string {
	_, port, _ := net.SplitHostPort(o.Listen)
	host := o.Hostnames[0]
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return "https://" + host + ":" + port
}

func (l *limitOptions) validate() error {
	switch {
	case l.MaxBody < 1024:
		return usagef("--max-body %d must be at least 1024 bytes", l.MaxBody)
	case l.MaxIdentifiers < 1:
		return usagef("--max-identifiers %d must be at least 1", l.MaxIdentifiers)
	case l.MaxPendingAuthzs < 1:
		return usagef("--max-pending-authzs %d must be at least 1", l.MaxPendingAuthzs)
	case l.ValidationWorkers < 1 || l.ValidationWorkers > 10000:
		return usagef("--validation-workers %d must be between 1 and 10000", l.ValidationWorkers)
	case l.ValidationTimeout < time.Second:
		return usagef("--validation-timeout %s must be at least 1s", l.ValidationTimeout)
	case l.MaxHeaderBytes < 4096:
		return usagef("--max-header-bytes %d must be at least 4096", l.MaxHeaderBytes)
	case l.DBMaxConns < 1:
		return usagef("--db-max-conns %d must be at least 1", l.DBMaxConns)
	}
	for name, d := range map[string]time.Duration{"--read-header-timeout": l.ReadHeaderTimeout, "--read-timeout": l.ReadTimeout,
		"--write-timeout": l.WriteTimeout, "--idle-timeout": l.IdleTimeout, "--db-statement-timeout": l.DBStatementTimeout} {
		if d < time.Second {
			return usagef("%s %s must be at least 1s", name, d)
		}
	}
	var err error
	if l.allowNets, err = policy.ParsePrefixes(l.ValidationAllow); err != nil {
		return usagef("--validation-allow-net: %v", err)
	}
	if l.denyNets, err = policy.ParsePrefixes(l.ValidationDeny); err != nil {
		return usagef("--validation-deny-net: %v", err)
	}
	return nil
}

func lower(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = strings.ToLower(strings.TrimSpace(s))
	}
	return out
}

// parseRateLimits reads the --rate-limit-* flags (N/DURATION, 0 = off).
func (o *serveOptions) parseRateLimits() error {
	c := ratelimit.DefaultConfig()
	rules := map[string]*ratelimit.Rule{
		"rate-limit-new-account-per-ip":             &c.NewAccountPerIP,
		"rate-limit-new-order-per-account":          &c.NewOrderPerAccount,
		"rate-limit-new-order-per-ip":               &c.NewOrderPerIP,
		"rate-limit-failed-validations-per-account": &c.FailedValidationsPerAccount,
		"rate-limit-failed-validations-per-ip":      &c.FailedValidationsPerIP,
	}
	for flag, rule := range rules {
		spec := strings.TrimSpace(*o.RateSpecs[flag])
		if spec == "0" || spec == "off" {
			rule.Limit, rule.Window = 0, 0
			continue
		}
		n, d, ok := strings.Cut(spec, "/")
		limit, err1 := strconv.Atoi(n)
		window, err2 := time.ParseDuration(d)
		if !ok || err1 != nil || err2 != nil || limit < 0 || window < time.Second {
			return usagef("--%s %q must be N/DURATION (e.g. 300/1h) or 0", flag, spec)
		}
		rule.Limit, rule.Window = limit, window
	}
	if err := c.Validate(); err != nil {
		return usagef("rate limits: %v", err)
	}
	o.RateLimits = c
	return nil
}

// shortDuration prints 1h0m0s as 1h.
func shortDuration(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	return strings.TrimSuffix(s, "0m")
}
