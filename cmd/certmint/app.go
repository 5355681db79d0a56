package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/acme/ratelimit"
	"github.com/certmint/certmint/acme/validate"
	"github.com/certmint/certmint/ca"
	"github.com/certmint/certmint/ca/crl"
	"github.com/certmint/certmint/internal/metrics"
	"github.com/certmint/certmint/storage"
)

// app is a running certmint server: its CA, store and listeners.
type app struct {
	opts     serveOptions
	log      *slog.Logger
	ca       *ca.CA
	identity *ca.ServerIdentity
	store    storage.Store
	acme     *acme.Server
	crl      *crl.Set
	issuers  *issuerWatch
	lock     *os.File // SQLite's one-process lock; nil on Postgres
	limiter  *ratelimit.Limiter
	metrics  *metrics.Metrics
	ln       *listeners // bound before openApp; closed by the servers
	holder   string
	sealing  auditSealing
}

// openApp opens the data directory, CA and database. On a first start that
// fails part-way it removes what it created, so nothing is half-written.
func openApp(ctx context.Context, o serveOptions, ln *listeners, log *slog.Logger) (a *app, err error) {
	created, err := ensureDataDir(o.Data)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && created {
			_ = os.RemoveAll(o.Data)
		}
	}()
	// CA files first: one that cannot sign stops start-up before the
	// database is touched.
	local, err := openLocalCA(o, log)
	if err != nil {
		return nil, err
	}
	if local != nil {
		defer local.Close() // the CA signing comes from the database
	}
	dsn := o.DB
	if dsn == "" {
		dsn = filepath.Join(o.Data, "certmint.db")
	}
	openCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var lock *os.File
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		if lock, err = lockSQLite(strings.TrimPrefix(dsn, "sqlite:")); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				lock.Close()
			}
		}()
	}
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
	// The CA comes from the database's issuers (the first start records
	// those of DATA/ca there): every replica signs with the same
	// intermediate, and a server that cannot sign stops here.
	authority, err := openAuthority(ctx, o, store, local, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			authority.Close()
		}
	}()
	for _, iss := range authority.Issuers() {
		log.Info("CA issuer", "role", iss.Role, "state", iss.State, "id", iss.ID, "key", iss.KeyLocation)
	}
	identity, err := authority.ServerIdentity(filepath.Join(o.Data, "tls"), o.Hostnames)
	if err != nil {
		return nil, usagef("cannot set up the server's TLS certificate for --hostname %v: %v", o.Hostnames, err)
	}
	if err := ensureAdmin(ctx, store, o.Data, log); err != nil {
		return nil, err
	}
	if err := checkWorkloadKeys(ctx, store, o.TrustDomain, log); err != nil {
		return nil, err
	}
	pub := crl.NewSet(store, authority, crl.Options{Logger: log})
	var limiter *ratelimit.Limiter
	if o.RateLimitsOn {
		limiter = ratelimit.New(store, nil)
	}
	m := newMetrics(o, store, authority, pub, log)
	v := validate.New(validate.Config{HTTPPort: o.HTTP01Port, TLSALPNPort: o.TLSALPN01Port, Resolver: o.DNSResolver, HostsFile: o.ValidationHosts,
		Timeout: o.Limits.ValidationTimeout, Allowed: o.Limits.allowNets, Denied: o.Limits.denyNets})
	var onFetch func(context.Context, string, string) // set once a exists
	srv, err := acme.New(ctx, acme.Config{
		OnBundleFetch: func(ctx context.Context, id, remote string) {
			if onFetch != nil {
				onFetch(ctx, id, remote)
			}
		},
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
		BaseURL:           baseURL(o, listenPort(ln.ACME)),
		CRLURL:            o.CRLURL,
		CRLHandler:        pub.Handler(),
		OnRevoke:          pub.Notify,
		Limiter:           limiter,
		RateLimits:        o.RateLimits,
		DefaultProfile:    o.DefaultProf,
		ReuseAuthz:        o.ReuseAuthz,
		Observer:          m,
		DNSPersistIssuers: o.PersistIssuer,
		TrustDomain:       o.TrustDomain,
		Logger:            log,
	}, store, authority, v)
	if err != nil {
		return nil, fmt.Errorf("start the ACME server: %w", err)
	}
	host, _ := os.Hostname()
	a = &app{opts: o, log: log, ca: authority, identity: identity, store: store, acme: srv, crl: pub, limiter: limiter, lock: lock, metrics: m, ln: ln,
		holder: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), acme.NewID())}
	a.issuers = &issuerWatch{app: a, poll: o.CAPoll}
	onFetch = a.recordBundleFetch
	return a, nil
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
	a.ca.Close()
	if a.lock != nil {
		a.lock.Close()
	}
}

// run serves the listeners and the background jobs until ctx ends.
func (a *app) run(ctx context.Context) error {
	tlsCfg := &tls.Config{GetCertificate: a.identity.GetCertificate, MinVersion: tls.VersionTLS12}
	servers := []*http.Server{a.newHTTPServer(a.withHealth(a.acme.Handler()), tlsCfg), a.newHTTPServer(a.adminHandler(), tlsCfg)}
	listeners := []net.Listener{a.ln.ACME, a.ln.Admin}
	if a.ln.CRL != nil {
		// The CRL and /metrics: plain HTTP, as their clients expect.
		servers = append(servers, a.newHTTPServer(a.crl.Handler(), nil))
		listeners = append(listeners, a.ln.CRL)
	}
	if a.ln.Metrics != nil {
		servers = append(servers, a.metricsServer())
		listeners = append(listeners, a.ln.Metrics)
	}
	go a.identity.Run(ctx)
	go a.crl.Run(ctx)
	go a.issuers.run(ctx)
	go a.backgroundJobs(ctx)
	go a.newDispatcher().Run(ctx)
	go a.runSealer(ctx)
	errc := make(chan error, len(servers))
	for i, s := range servers {
		go func(s *http.Server, ln net.Listener) {
			if s.TLSConfig == nil {
				errc <- s.Serve(ln)
				return
			}
			errc <- s.ServeTLS(ln, "", "")
		}(s, listeners[i])
	}
	if err := a.announce(); err != nil {
		return err
	}
	defer a.removeReadyFile()
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

// sweep expires stale objects and old rate-limit windows, on one replica
// at a time.
func (a *app) sweep(ctx context.Context) {
	ok, err := a.store.AcquireLease(ctx, "sweeper", a.holder, time.Now(), 90*time.Second)
	if err != nil || !ok {
		return
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

// baseURL is the ACME base URL for work done outside a request: the
// first --hostname and the port of --listen (its real one when serving).
func baseURL(o serveOptions, port string) string {
	return "https://" + net.JoinHostPort(o.Hostnames[0], port)
}
