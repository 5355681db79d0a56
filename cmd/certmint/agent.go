package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/certmint/certmint/acme/agent"
)

func init() { extraCommands = append(extraCommands, newAgentCmd) }

// defaultP12Password protects the PKCS#12 stores when no
// --p12-password-file is given: "changeit", the JDK's well-known default,
// so a Java service works out of the box. Set a real one in production.
const defaultP12Password = "changeit"

// agentOptions are the flags of `certmint agent`.
type agentOptions struct {
	Server, Root, Fingerprint, Out string
	Names                          []string
	HTTP01, TLSALPN01, DNS01Hook   string
	Profile, EABKid, EABHMAC       string
	EABHMACFile                    string
	P12PasswordFile, Exec, Metrics string
	P12Alias                       string
	Once, Quiet, InstallTrust      bool
	DNSPersist                     bool
}

func newAgentCmd() *cobra.Command {
	var o agentOptions
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Obtain a certificate and keep it renewed, as files for any service",
		Long: `Obtain a certificate from certmint and keep it renewed. --out DIR receives
cert.pem, chain.pem, fullchain.pem, key.pem (0600), root.pem, keystore.p12 (key
and chain) and truststore.p12 (the root as a trusted entry), each replaced
atomically. The PKCS#12 password is the first line of --p12-password-file, or
"changeit" without one; the key's alias in keystore.p12 is the first --name
unless --p12-alias sets it. Without a challenge flag, http-01 is answered on :80.

It prints one line per action on stdout: obtained, renewed or unchanged, with
the names, the serial, the expiry and the time of its next check, e.g.
  renewed names=svc.internal serial=4f0c... expires=2026-12-01T10:00:00Z next_check=2026-11-30T04:12:09Z
--quiet silences these lines; errors and warnings still go to stderr.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAgent(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	// A word in backticks is the value's placeholder in --help.
	f.StringVar(&o.Server, "server", "", "ACME directory `URL`, e.g. https://ca.internal:8443/acme/directory")
	f.StringVar(&o.Root, "root", "", "PEM `FILE` with the CA root to trust")
	f.StringVar(&o.Fingerprint, "root-fingerprint", "", "`SHA256` fingerprint of the CA root, as certmint ca root prints it; the root is fetched from the server and checked")
	f.StringArrayVar(&o.Names, "name", nil, "DNS `NAME` or IP address of the certificate, repeatable")
	f.StringVar(&o.Out, "out", "", "`DIR` for the certificate, key, stores and agent state")
	f.StringVar(&o.HTTP01, "http01-listen", "", "answer http-01 on this `ADDR` (default :80)")
	f.StringVar(&o.TLSALPN01, "tlsalpn01-listen", "", "answer tls-alpn-01 on this `ADDR`")
	f.StringVar(&o.DNS01Hook, "dns01-hook", "", "answer dns-01 by running `CMD`, as: CMD present|cleanup FQDN VALUE")
	f.BoolVar(&o.DNSPersist, "dns-persist", false, "answer dns-persist-01: the _validation-persist TXT record is published once (see certmint admin dns-persist-record); no DNS credentials, no listener")
	f.StringVar(&o.Profile, "profile", "", "ACME profile `NAME` to ask for")
	f.StringVar(&o.EABKid, "eab-kid", "", "External Account Binding key `ID`")
	f.StringVar(&o.EABHMAC, "eab-hmac", "", "External Account Binding HMAC `KEY` (base64url); prefer --eab-hmac-file or CERTMINT_EAB_HMAC, which keep it out of ps")
	f.StringVar(&o.EABHMACFile, "eab-hmac-file", "", "`FILE` that holds the External Account Binding HMAC key (base64url, one line)")
	f.StringVar(&o.P12PasswordFile, "p12-password-file", "", "`FILE` whose first line is the PKCS#12 password (default password: changeit)")
	f.StringVar(&o.P12Alias, "p12-alias", "", "`ALIAS` of the key in keystore.p12, for server.ssl.key-alias (default: the first --name)")
	f.StringVar(&o.Exec, "exec", "", "shell `COMMAND` run after every new certificate")
	f.StringVar(&o.Metrics, "metrics-listen", "", "serve /healthz and /metrics (Prometheus) on this `ADDR`")
	f.BoolVar(&o.Once, "once", false, "obtain or renew once, then exit (for cron or systemd timers)")
	f.BoolVar(&o.InstallTrust, "install-trust", false, "keep the server's roots (/roots/bundle.pem) installed in the system, Java and NSS trust stores, as certmint trust install does")
	f.BoolVar(&o.Quiet, "quiet", false, "print nothing on success (no line per action)")
	return cmd
}

// validate checks the flags; bad usage is exit status 2.
func (o *agentOptions) validate() error {
	switch {
	case o.Server == "":
		return usagef("--server is required: the ACME directory URL, e.g. https://ca.internal:8443/acme/directory")
	case (o.Root == "") == (o.Fingerprint == ""):
		return usagef("give exactly one of --root FILE or --root-fingerprint SHA256 to trust the CA")
	case len(o.Names) == 0:
		return usagef("--name is required (repeat it for more names)")
	case o.Out == "":
		return usagef("--out DIR is required")
	case o.EABHMAC != "" && o.EABHMACFile != "":
		return usagef("give the EAB HMAC key once: --eab-hmac-file FILE or --eab-hmac KEY, not both")
	case (o.EABKid == "") != (o.EABHMAC == "" && o.EABHMACFile == ""):
		return usagef("--eab-kid and --eab-hmac-file (or --eab-hmac) go together")
	}
	modes := 0
	for _, m := range []string{o.HTTP01, o.TLSALPN01, o.DNS01Hook} {
		if m != "" {
			modes++
		}
	}
	if o.DNSPersist {
		modes++
	}
	if modes > 1 {
		return usagef("give only one of --http01-listen, --tlsalpn01-listen, --dns01-hook and --dns-persist")
	}
	if modes == 0 {
		o.HTTP01 = ":80"
	}
	if o.P12Alias == "" {
		o.P12Alias = strings.ToLower(strings.TrimSpace(o.Names[0]))
	}
	if strings.TrimSpace(o.P12Alias) == "" || strings.IndexFunc(o.P12Alias, func(r rune) bool { return r > 0xffff }) >= 0 {
		return usagef("--p12-alias %q must be a non-empty name without characters outside the Basic Multilingual Plane (PKCS#12 stores aliases as UCS-2)", o.P12Alias)
	}
	return nil
}

func (o *agentOptions) password() (string, error) {
	if o.P12PasswordFile == "" {
		return defaultP12Password, nil
	}
	data, err := os.ReadFile(o.P12PasswordFile)
	if err != nil {
		return "", usagef("cannot read --p12-password-file: %v", errors.Unwrap(err))
	}
	pw, _, _ := strings.Cut(string(data), "\n")
	pw = strings.TrimRight(pw, "\r")
	if pw == "" {
		return "", usagef("--p12-password-file %s is empty", o.P12PasswordFile)
	}
	return pw, nil
}

// agentDaemon ties the agent to the output files, --exec and metrics.
type agentDaemon struct {
	o                  agentOptions
	password           string
	stdout             io.Writer
	log                *slog.Logger
	ag                 *agent.Agent
	writeErr           atomic.Pointer[error]
	renewals, failures prometheus.Counter
}

func runAgent(ctx context.Context, o agentOptions) error {
	if err := o.validate(); err != nil {
		return err
	}
	pw, err := o.password()
	if err != nil {
		return err
	}
	if o.EABHMACFile != "" {
		if o.EABHMAC, err = readSecretFile("--eab-hmac-file", o.EABHMACFile); err != nil {
			return err
		}
	}
	// Warnings and errors on stderr (a failed start is one line: the
	// error); each action is one line on stdout (agentreport.go).
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	agent.RouteLegoLogs(log)
	d := &agentDaemon{o: o, password: pw, log: log, stdout: os.Stdout,
		renewals: prometheus.NewCounter(prometheus.CounterOpts{Name: "certmint_agent_renewals_total",
			Help: "New certificates obtained (the first one included)."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "certmint_agent_renewal_failures_total",
			Help: "Failed attempts to obtain or renew the certificate."}),
	}
	ag, err := agent.New(agent.Config{
		DirectoryURL: o.Server, RootFile: o.Root, RootFingerprint: o.Fingerprint,
		Names: o.Names, Profile: o.Profile, EABKeyID: o.EABKid, EABHMAC: o.EABHMAC,
		HTTP01Listen: o.HTTP01, TLSALPN01Listen: o.TLSALPN01, DNS01Hook: o.DNS01Hook,
		StateDir: o.Out, Logger: log, OnRenew: d.onRenew, OnEvent: d.report, OnBundle: d.onBundle, DNSPersist: o.DNSPersist,
		OnError: func(error, time.Duration) { d.failures.Inc() },
	})
	if errors.Is(err, agent.ErrConfig) {
		return usagef("%s", oneLine(err))
	}
	if err != nil {
		return errors.New(oneLine(err))
	}
	d.ag = ag

	if o.Once {
		if _, err := ag.RunOnce(ctx); err != nil {
			return errors.New(oneLine(err))
		}
		if err := d.finishStart(); err != nil || !o.InstallTrust {
			return err
		}
		return syncAgentTrust(ctx, ag, log, findAgentTrustStores(log))
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.Metrics != "" {
		if err := d.serveMetrics(ctx); err != nil {
			return err
		}
	}
	if err := ag.Start(ctx); err != nil {
		d.failures.Inc()
		return errors.New(oneLine(err))
	}
	if err := d.finishStart(); err != nil {
		return err
	}
	if o.InstallTrust {
		go keepAgentTrust(ctx, ag, log)
	}
	<-ctx.Done()
	return nil
}

// finishStart reports a failed write of a new certificate and writes the
// Java stores if a reused certificate has none yet.
func (d *agentDaemon) finishStart() error {
	if p := d.writeErr.Load(); p != nil {
		return errors.New(oneLine(*p))
	}
	if _, err := os.Stat(filepath.Join(d.o.Out, agent.KeystoreFile)); err == nil {
		return nil
	}
	if err := agent.WriteJavaStores(d.o.Out, d.ag.Current(), d.ag.Bundle(), d.password, d.o.P12Alias); err != nil {
		return errors.New(oneLine(err))
	}
	return nil
}

// onBundle rewrites the Java trust store when the CA's roots changed (a
// root rotation), so Java services trust the new root in time.
func (d *agentDaemon) onBundle(roots []*x509.Certificate) {
	cert := d.ag.Current()
	if cert == nil {
		return
	}
	if err := agent.WriteJavaStores(d.o.Out, cert, roots, d.password, d.o.P12Alias); err != nil {
		d.writeErr.Store(&err)
		d.log.Error("write Java stores", "err", err.Error())
	}
}

// onRenew writes the Java stores and runs --exec after a new certificate.
func (d *agentDaemon) onRenew(cert *tls.Certificate) {
	d.renewals.Inc()
	if err := agent.WriteJavaStores(d.o.Out, cert, d.ag.Bundle(), d.password, d.o.P12Alias); err != nil {
		d.writeErr.Store(&err)
		d.log.Error("write Java stores", "err", err.Error())
		return
	}
	if d.o.Exec == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", d.o.Exec)
	cmd.Env = append(os.Environ(), "CERTMINT_OUT="+d.o.Out,
		"CERTMINT_CERT="+filepath.Join(d.o.Out, "cert.pem"),
		"CERTMINT_KEY="+filepath.Join(d.o.Out, "key.pem"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		d.log.Error("--exec failed", "err", err.Error())
	}
}

// serveMetrics serves /healthz (200 while the certificate is valid) and
// Prometheus metrics.
func (d *agentDaemon) serveMetrics(ctx context.Context) error {
	reg := prometheus.NewRegistry()
	expiry := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "certmint_agent_certificate_expiry_seconds",
		Help: "Seconds until the current certificate expires (negative once expired)."},
		func() float64 {
			if c := d.ag.Current(); c != nil {
				return time.Until(c.Leaf.NotAfter).Seconds()
			}
			return 0
		})
	reg.MustRegister(expiry, d.renewals, d.failures)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		c := d.ag.Current()
		if c == nil || !time.Now().Before(c.Leaf.NotAfter) {
			http.Error(w, "no valid certificate", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "ok, certificate valid until %s\n", c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	})
	ln, err := net.Listen("tcp", d.o.Metrics)
	if err != nil {
		return fmt.Errorf("--metrics-listen %s: %w", d.o.Metrics, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	go func() { <-ctx.Done(); _ = srv.Close() }()
	return nil
}

// oneLine keeps an error to the single line the exit contract promises.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}
