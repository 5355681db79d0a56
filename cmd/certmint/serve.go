package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/certmint/certmint/acme/policy"
	"github.com/certmint/certmint/acme/ratelimit"
	"github.com/certmint/certmint/acme/validate"
	"github.com/certmint/certmint/ca"
	"github.com/certmint/certmint/storage"
)

// serveOptions is the validated configuration of `certmint serve`.
type serveOptions struct {
	Data            string
	DB              string
	Listen          string
	AdminListen     string
	Hostnames       []string
	HostnameOnly    bool
	ValidationHosts string
	HTTP01Port      int
	TLSALPN01Port   int
	DNSResolver     string
	RootName        string
	TOS             string
	ReuseAuthz      bool
	PersistIssuer   []string
	LogLevel        string
	Passphrase      []byte
	ProfileSpecs    []string
	EABRequired     bool
	AllowDomains    []string
	DenyDomains     []string
	AllowIPs        []string
	DenyIPs         []string
	NoWildcards     bool
	MaxValidity     time.Duration
	Policy          policy.Rules
	DefaultProf     string
	Profiles        map[string]ca.Profile
	Limits          limitOptions
	CRLListen       string
	MetricsListen   string
	ReadyFile       string
	CRLURL          string
	RateLimitsOn    bool
	RateSpecs       map[string]*string
	RateLimits      ratelimit.Config
	CAPoll          time.Duration
	WebhookRetry    time.Duration
	WebhookPoll     time.Duration
	AuditSeal       auditSealOptions
	Console         consoleOptions
	TrustDomainName string               // --trust-domain as given
	TrustDomain     spiffeid.TrustDomain // parsed; zero: none (identity.go)
	// Sources says where each flag's value came from (flagSources).
	Sources map[string]string
}

// serverGCPercent is GOGC for serve and bench unless the environment
// sets one. The server's live heap is small (about 15 MB under load), so
// the default of 100 made the collector run very often: 400 spent about a
// tenth less CPU per issuance and kept peak RSS under 90 MB
// (BENCHMARKS.md).
const serverGCPercent = 400

func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serverGCPercent)
	}
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
			o.Sources = flagSources(cmd.Flags())
			tuneGC()
			return serve(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Data, "data", "./certmint-data", "directory for CA keys, the server's TLS certificate and the SQLite database")
	f.StringVar(&o.DB, "db", "", "database: empty for SQLite in --data, or postgres://user:pass@host:5432/db")
	f.StringVar(&o.Listen, "listen", ":8443", "address of the ACME API (HTTPS)")
	f.StringVar(&o.AdminListen, "admin-listen", "127.0.0.1:8444", "address of the admin console (HTTPS)")
	f.StringSliceVar(&o.Hostnames, "hostname", nil, "names and IPs for the server's TLS certificate, added to localhost, 127.0.0.1 and the host name (the first one given names the server in URLs)")
	f.BoolVar(&o.HostnameOnly, "hostname-only", false, "put only the --hostname names in the server's TLS certificate, not the defaults")
	f.IntVar(&o.HTTP01Port, "http01-port", 80, "port that http-01 validation connects to")
	f.IntVar(&o.TLSALPN01Port, "tlsalpn01-port", 443, "port that tls-alpn-01 validation connects to")
	f.StringVar(&o.DNSResolver, "dns-resolver", "", "DNS server (ip:port) for validation look-ups (default: the system's, /etc/hosts first)")
	f.StringVar(&o.ValidationHosts, "validation-hosts", "", "hosts-format file (ADDRESS NAME...) that validation consults before DNS; for demos, tests and split horizon")
	f.StringVar(&o.RootName, "ca-name", "certmint Root CA", "common name of the root CA, used when it is first created")
	f.StringVar(&o.TOS, "tos-url", "", "terms of service URL; when set, new accounts must agree to it")
	f.BoolVar(&o.ReuseAuthz, "reuse-authz", false, "reuse an account's still-valid authorizations in new orders")
	f.StringSliceVar(&o.PersistIssuer, "dns-persist-issuer", nil, "enable dns-persist-01 with this issuer domain name (repeatable, at most 10), e.g. ca.internal")
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
	f.StringVar(&o.ReadyFile, "ready-file", "", "once serving, write the listeners' real addresses and URLs here as JSON (for scripts and tests that listen on port 0); removed on exit")
	f.StringVar(&o.MetricsListen, "metrics-listen", "", "address of the plain-HTTP Prometheus /metrics endpoint (e.g. 127.0.0.1:9090); empty turns it off")
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
	f.DurationVar(&o.CAPoll, "ca-poll", defaultCAPoll, "how often to look for a CA rotation made elsewhere (the CLI, the console, another replica)")
	_ = f.MarkHidden("ca-poll")
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
	o.Console.register(f)
	f.IntVar(&l.DBMaxConns, "db-max-conns", 20, "Postgres connection pool size")
	f.DurationVar(&l.DBStatementTimeout, "db-statement-timeout", 10*time.Second, "Postgres statement timeout")
	webhookFlags(cmd, &o)
	o.AuditSeal.register(f)
	trustDomainFlag(cmd, &o)
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
	if err := checkListenAddrs(*o); err != nil {
		return err
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
	if err := o.checkPersistIssuers(); err != nil {
		return err
	}
	if o.DB != "" && !strings.HasPrefix(o.DB, "postgres://") && !strings.HasPrefix(o.DB, "postgresql://") && !strings.HasPrefix(o.DB, "sqlite:") {
		return usagef("--db %q is not a database URL; use postgres://user:pass@host:5432/db or sqlite:/path/file.db", redactDSN(o.DB))
	}
	if o.ValidationHosts != "" {
		if err := validate.CheckHostsFile(o.ValidationHosts); err != nil {
			return usagef("--validation-hosts: %v", err)
		}
	}
	if err := o.resolveHostnames(); err != nil {
		return err
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
	if err := o.Console.validate(); err != nil {
		return err
	}
	if err := o.validateWebhooks(); err != nil {
		return err
	}
	if err := o.AuditSeal.validate(o.Limits.DBStatementTimeout); err != nil {
		return err
	}
	if err := o.validateTrustDomain(); err != nil {
		return err
	}
	if o.ReadyFile != "" {
		if fi, err := os.Stat(filepath.Dir(o.ReadyFile)); err != nil || !fi.IsDir() {
			return usagef("--ready-file %s: its directory %s does not exist", o.ReadyFile, filepath.Dir(o.ReadyFile))
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
	if o.Passphrase, err = caPassphrase(); err != nil {
		return err
	}
	if o.CAPoll < 100*time.Millisecond {
		return usagef("--ca-poll %s must be at least 100ms", o.CAPoll)
	}
	return nil
}

// defaultHostnames are always in the server's certificate unless
// --hostname-only: the README points browsers at https://127.0.0.1:8444
// and clients at https://localhost:8443, whatever else the operator names.
func defaultHostnames() []string {
	names := []string{"localhost", "127.0.0.1"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		names = append(names, strings.ToLower(h))
	}
	return names
}

// resolveHostnames puts the operator's --hostname names first (the first
// one names the server in URLs it builds) and adds the defaults after
// them, once each, unless --hostname-only.
func (o *serveOptions) resolveHostnames() error {
	if o.HostnameOnly && len(o.Hostnames) == 0 {
		return usagef("--hostname-only needs --hostname NAME[,NAME...]: the names to put in the server's certificate")
	}
	names := lower(o.Hostnames)
	if !o.HostnameOnly {
		names = append(names, defaultHostnames()...)
	}
	seen := map[string]bool{}
	o.Hostnames = o.Hostnames[:0]
	for _, n := range names {
		if n != "" && !seen[n] {
			seen[n] = true
			o.Hostnames = append(o.Hostnames, n)
		}
	}
	if len(o.Hostnames) == 0 {
		return usagef("--hostname has no names; give NAME[,NAME...] or leave it out for the defaults")
	}
	return nil
}

// warnUncoveredConsole warns when --hostname-only left out the console's
// own listen address, so a browser pointed at it would not verify.
func warnUncoveredConsole(log *slog.Logger, o serveOptions) {
	host, _, _ := net.SplitHostPort(o.AdminListen)
	ip := net.ParseIP(host)
	if host == "" || (ip != nil && ip.IsUnspecified()) || slices.Contains(o.Hostnames, strings.ToLower(host)) {
		return
	}
	log.Warn("the server's certificate does not cover the console's address; add it to --hostname or drop --hostname-only",
		"admin_listen", o.AdminListen, "hostname", strings.Join(o.Hostnames, ","))
}

// redactDSN hides the password of a database URL in messages; a SQLite
// file path is shown as it is.
func redactDSN(dsn string) string {
	if strings.Contains(dsn, "://") || strings.Contains(dsn, "=") {
		return storage.RedactDSN(dsn)
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

	// Every socket first: a bad or taken address must stop start-up
	// before a CA, a database or a console user is written.
	ln, err := bindListeners(o)
	if err != nil {
		return err
	}
	defer ln.close()
	// Only now: a refused start is the one line of its error, not a
	// warning about a console that never ran as well.
	warnUncoveredConsole(log, o)
	if o.CRLURL == "" && ln.CRL != nil {
		o.CRLURL = defaultCRLURL(ln.CRL, o.Hostnames)
	}
	app, err := openApp(ctx, o, ln, log)
	if err != nil {
		return err
	}
	defer app.close()
	return app.run(ctx)
}

func lower(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = strings.ToLower(strings.TrimSpace(s))
	}
	return out
}
