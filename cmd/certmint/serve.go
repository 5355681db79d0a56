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
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/acme/policy"
	"github.com/certmint/certmint/acme/validate"
	"github.com/certmint/certmint/ca"
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
	store, err := storage.Open(openCtx, dsn, storage.Options{Logger: log})
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
	identity, err := authority.ServerIdentity(filepath.Join(o.Data, "tls"), o.Hostnames)
	if err != nil {
		return nil, usagef("cannot set up the server's TLS certificate for --hostname %v: %v", o.Hostnames, err)
	}
	if err := ensureAdmin(ctx, store, o.Data, log); err != nil {
		return nil, err
	}
	v := validate.New(validate.Config{HTTPPort: o.HTTP01Port, TLSALPNPort: o.TLSALPN01Port, Resolver: o.DNSResolver})
	srv, err := acme.New(ctx, acme.Config{
		TermsOfService: o.TOS,
		Profiles:       o.Profiles,
		EABRequired:    o.EABRequired,
		Policy:         o.Policy,
		NoWildcards:    o.NoWildcards,
		MaxValidity:    o.MaxValidity,
		DefaultProfile: o.DefaultProf,
		ReuseAuthz:     o.ReuseAuthz,
		Logger:         log,
	}, store, authority, v)
	if err != nil {
		return nil, fmt.Errorf("start the ACME server: %w", err)
	}
	host, _ := os.Hostname()
	return &app{opts: o, log: log, ca: authority, identity: identity, store: store, acme: srv,
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
	servers := []*http.Server{newHTTPServer(a.acme.Handler(), tlsCfg, a.log)}
	listeners := []net.Listener{acmeLn}
	if h := a.adminHandler(); h != nil {
		adminLn, err := net.Listen("tcp", a.opts.AdminListen)
		if err != nil {
			acmeLn.Close()
			return fmt.Errorf("listen on --admin-listen %s: %w", a.opts.AdminListen, errors.Unwrap(err))
		}
		servers = append(servers, newHTTPServer(h, tlsCfg, a.log))
		listeners = append(listeners, adminLn)
	}
	go a.identity.Run(ctx)
	go a.backgroundJobs(ctx)
	errc := make(chan error, len(servers))
	for i, s := range servers {
		go func(s *http.Server, ln net.Listener) { errc <- s.ServeTLS(ln, "", "") }(s, listeners[i])
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
func newHTTPServer(h http.Handler, tlsCfg *tls.Config, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// backgroundJobs runs the sweeper once per cluster: only the replica that
// holds the "sweeper" lease works, the others wait.
func (a *app) backgroundJobs(ctx context.Context) {
	if n, err := a.store.RecoverProcessing(ctx, time.Now().Add(-time.Minute)); err == nil && n > 0 {
		a.log.Info("recovered orders left processing", "orders", n)
	}
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		if ok, err := a.store.AcquireLease(ctx, "sweeper", a.holder, time.Now(), 90*time.Second); err == nil && ok {
			if n, err := a.store.ExpireStale(ctx, time.Now()); err != nil {
				a.log.Warn("sweep failed", "err", err)
			} else if n > 0 {
				a.log.Debug("swept stale objects", "rows", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func lower(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = strings.ToLower(strings.TrimSpace(s))
	}
	return out
}
