// Command mtls-demo is the sender/receiver pair of the mutual-TLS
// walkthrough: each side embeds the certmint agent, gets its certificate
// from certmint, and they talk over mutual TLS that trusts only the CA's
// root, across renewals, without a restart.
//
//	mtls-demo receiver --listen :9443 --server URL --root-fingerprint FP --name receiver.internal --state DIR --http01-listen :80
//	mtls-demo sender --receiver https://receiver.internal:9443/ --server URL --root-fingerprint FP --name sender.internal --state DIR --http01-listen :80
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/certmint/certmint/acme/agent"
)

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "receiver" && os.Args[1] != "sender") {
		fmt.Fprintln(os.Stderr, "usage: mtls-demo receiver|sender [flags] (see -h)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "mtls-demo: "+err.Error())
		os.Exit(1)
	}
}

type names []string

func (n *names) String() string     { return strings.Join(*n, ",") }
func (n *names) Set(v string) error { *n = append(*n, v); return nil }

func run(ctx context.Context, role string, args []string) error {
	fs := flag.NewFlagSet(role, flag.ExitOnError)
	var cfg agent.Config
	var ns names
	fs.StringVar(&cfg.DirectoryURL, "server", "", "certmint ACME directory URL")
	fs.StringVar(&cfg.RootFile, "root", "", "PEM file with the CA root")
	fs.StringVar(&cfg.RootFingerprint, "root-fingerprint", "", "SHA-256 of the CA root (fetched and checked)")
	fs.Var(&ns, "name", "DNS name or IP of this service's certificate, repeatable")
	fs.StringVar(&cfg.StateDir, "state", "", "agent state directory")
	fs.StringVar(&cfg.HTTP01Listen, "http01-listen", ":80", "address to answer http-01 on")
	fs.StringVar(&cfg.Profile, "profile", "", "ACME profile")
	listen := fs.String("listen", ":9443", "receiver: mutual-TLS address")
	receiver := fs.String("receiver", "", "sender: receiver URL")
	interval := fs.Duration("interval", time.Second, "sender: time between calls")
	count := fs.Int("count", 0, "sender: stop after this many calls (0: forever)")
	_ = fs.Parse(args)
	cfg.Names = ns
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("role", role)
	agent.RouteLegoLogs(log)
	cfg.Logger = log
	cfg.OnRenew = func(c *tls.Certificate) {
		log.Info("certificate renewed", "serial", c.Leaf.SerialNumber.Text(16), "not_after", c.Leaf.NotAfter)
	}
	ag, err := agent.New(cfg)
	if err != nil {
		return err
	}
	if err := ag.Start(ctx); err != nil {
		return err
	}
	if role == "receiver" {
		return Receive(ctx, ag, *listen, log)
	}
	if *receiver == "" {
		return fmt.Errorf("sender needs --receiver URL")
	}
	failed := Send(ctx, ag, *receiver, *interval, *count, log)
	if failed > 0 {
		return fmt.Errorf("%d calls failed", failed)
	}
	return nil
}

// Receive serves mutual TLS on addr until ctx ends: a client without a
// certificate from the CA fails the handshake; others get their identity
// back.
func Receive(ctx context.Context, ag *agent.Agent, addr string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: Handler(ag), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	log.Info("receiver listening", "addr", ln.Addr().String())
	if err := srv.Serve(tls.NewListener(ln, ag.ServerTLSConfig())); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// Handler answers with the caller's identity: the SANs of its verified
// client certificate.
func Handler(ag *agent.Agent) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			http.Error(w, "client certificate required", http.StatusUnauthorized)
			return
		}
		me := ag.Current().Leaf
		fmt.Fprintf(w, "hello %s, this is %s\n", Identity(r.TLS.VerifiedChains[0][0]), Identity(me))
	})
}

// Identity is a certificate's SANs, comma-separated.
func Identity(c *x509.Certificate) string {
	ids := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		ids = append(ids, ip.String())
	}
	return strings.Join(ids, ",")
}

// Send calls url every interval (count times, or until ctx ends if count
// is 0), logs each answer and returns how many calls failed.
func Send(ctx context.Context, ag *agent.Agent, url string, interval time.Duration, count int, log *slog.Logger) int {
	client := &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: ag.ClientTLSConfig()}}
	failed := 0
	for i := 0; count == 0 || i < count; i++ {
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				log.Info("answer", "body", strings.TrimSpace(string(body)))
			} else {
				err = fmt.Errorf("HTTP %s", resp.Status)
			}
		}
		if err != nil {
			failed++
			log.Error("call failed", "err", err.Error())
		}
		select {
		case <-ctx.Done():
			return failed
		case <-time.After(interval):
		}
	}
	return failed
}
