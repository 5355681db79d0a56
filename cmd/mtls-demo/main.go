// Command mtls-demo is the sender/receiver pair of the mutual-TLS
// walkthrough: each side gets its certificate from certmint and they talk
// over mutual TLS that trusts only the CA's root, across renewals, without
// a restart. Each side either embeds the certmint agent, or uses the files
// a `certmint agent --out DIR` keeps current (--cert-dir DIR).
//
//	mtls-demo receiver --listen :9443 --server URL --root-fingerprint FP --name receiver.internal --state DIR --http01-listen :80
//	mtls-demo sender --receiver https://receiver.internal:9443/ --server URL --root-fingerprint FP --name sender.internal --state DIR --http01-listen :80
//	mtls-demo receiver --listen :9443 --cert-dir /etc/receiver/tls
//	mtls-demo sender --receiver https://receiver.internal:9443/ --cert-dir /etc/sender/tls
//
// The sender logs one line per call: "call ok" with the receiver's name and
// the serial of the certificate it presented, and the receiver's answer,
// which names the sender and the serial of the certificate it saw.
//
// --allow SPIFFE-ID (repeatable; a prefix ends in /*) authorizes peers by
// the workload identity in their certificate, not just by the CA: the
// receiver refuses any other caller, with a "caller refused" line naming
// it, and the sender refuses a receiver that is not on its list.
//
//	mtls-demo receiver --cert-dir /etc/receiver/tls --allow spiffe://corp.example/payments/sender
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

// names is a repeatable flag.
type names []string

func (n *names) String() string     { return strings.Join(*n, ",") }
func (n *names) Set(v string) error { *n = append(*n, v); return nil }

func run(ctx context.Context, role string, args []string) error {
	fs := flag.NewFlagSet(role, flag.ExitOnError)
	var cfg agent.Config
	var ns, allowed names
	fs.StringVar(&cfg.DirectoryURL, "server", "", "certmint ACME directory URL (embedded agent)")
	fs.StringVar(&cfg.RootFile, "root", "", "PEM file with the CA root (embedded agent)")
	fs.StringVar(&cfg.RootFingerprint, "root-fingerprint", "", "SHA-256 of the CA root, fetched and checked (embedded agent)")
	fs.Var(&ns, "name", "DNS name or IP of this service's certificate, repeatable (embedded agent)")
	fs.StringVar(&cfg.StateDir, "state", "", "agent state directory (embedded agent)")
	fs.StringVar(&cfg.HTTP01Listen, "http01-listen", ":80", "address to answer http-01 on (embedded agent)")
	fs.StringVar(&cfg.Profile, "profile", "", "ACME profile (embedded agent)")
	certDir := fs.String("cert-dir", "", "use the files in `DIR` that certmint agent --out DIR keeps current, instead of an embedded agent")
	listen := fs.String("listen", ":9443", "receiver: mutual-TLS address")
	receiver := fs.String("receiver", "", "sender: receiver URL")
	connect := fs.String("connect", "", "sender: connect to this host:port whatever the URL's host (no DNS needed); TLS still checks the URL's name")
	interval := fs.Duration("interval", time.Second, "sender: time between calls")
	count := fs.Int("count", 0, "sender: stop after this many calls (0: until stopped)")
	fs.Var(&allowed, "allow", "accept only peers with this SPIFFE `ID` (repeatable; spiffe://TD/PATH/* for every ID below PATH): the receiver's callers, the sender's receiver")
	_ = fs.Parse(args)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("role", role)
	var allow *agent.PeerAllowList
	if len(allowed) > 0 {
		var err error
		if allow, err = agent.ParsePeerAllowList(allowed); err != nil {
			fmt.Fprintln(os.Stderr, "mtls-demo: --allow: "+err.Error())
			os.Exit(2)
		}
	}

	var src source
	if *certDir != "" {
		f, err := openFiles(*certDir, time.Minute)
		if err != nil {
			return err
		}
		src = f
	} else {
		cfg.Names = ns
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
		src = ag
	}
	if role == "receiver" {
		return Receive(ctx, src, *listen, allow, log)
	}
	if *receiver == "" {
		return fmt.Errorf("sender needs --receiver URL")
	}
	failed := Send(ctx, src, *receiver, *connect, *interval, *count, allow, log)
	if failed > 0 {
		return fmt.Errorf("%d calls failed", failed)
	}
	return nil
}

// Receive serves mutual TLS on addr until ctx ends: a client without a
// certificate from the CA fails the handshake, and with allow set so does
// one whose workload identity is not on the list (logged as "caller
// refused" with its identity, names and serial); others get their
// identity back.
func Receive(ctx context.Context, src source, addr string, allow *agent.PeerAllowList, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	cfg := src.ServerTLSConfig()
	if allow != nil {
		allow.Apply(cfg, func(e *agent.PeerRefusedError) {
			log.Warn("caller refused", "peer_id", idOrNone(e.ID.String()), "peer_names", strings.Join(e.Names, ","),
				"peer_serial", e.Serial, "reason", e.Reason)
		})
	}
	srv := &http.Server{Handler: Handler(src), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	log.Info("receiver listening", "addr", ln.Addr().String(), "allow", allowString(allow))
	if err := srv.Serve(tls.NewListener(ln, cfg)); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// Handler answers with the caller's identity, the SANs and serial of its
// verified client certificate, and its own.
func Handler(src source) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			http.Error(w, "client certificate required", http.StatusUnauthorized)
			return
		}
		peer, me := r.TLS.VerifiedChains[0][0], src.Current().Leaf
		fmt.Fprintf(w, "hello %s (serial %s), this is %s\n", Identity(peer), peer.SerialNumber.Text(16), Identity(me))
	})
}

// Identity is a certificate's SANs, comma-separated: its SPIFFE ID (URI
// SAN) first, when it has one, then its DNS names and IP addresses.
func Identity(c *x509.Certificate) string {
	var ids []string
	for _, u := range c.URIs {
		ids = append(ids, u.String())
	}
	ids = append(ids, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		ids = append(ids, ip.String())
	}
	return strings.Join(ids, ",")
}

func idOrNone(id string) string {
	if id == "" {
		return "(none)"
	}
	return id
}

func allowString(allow *agent.PeerAllowList) string {
	if allow == nil {
		return "(any certificate of the CA)"
	}
	return allow.String()
}

// Send calls url every interval (count times, or until ctx ends if count
// is 0), each call on a new connection so that every call shows the
// certificates in use at that moment, logs each answer and returns how many
// calls failed. With connect set it dials that address for any host; with
// allow set the receiver's workload identity must be on the list.
func Send(ctx context.Context, src source, url, connect string, interval time.Duration, count int, allow *agent.PeerAllowList, log *slog.Logger) int {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	cfg := src.ClientTLSConfig()
	if allow != nil {
		allow.Apply(cfg, nil)
	}
	tr := &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}
	if connect != "" {
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, connect)
		}
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	failed := 0
	for i := 0; count == 0 || i < count; i++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if ctx.Err() != nil {
			return failed // stopped mid-call: not a failed call
		}
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				peer := resp.TLS.PeerCertificates[0]
				log.Info("call ok", "peer", Identity(peer), "peer_serial", peer.SerialNumber.Text(16),
					"answer", strings.TrimSpace(string(body)))
			} else {
				err = fmt.Errorf("HTTP %s", resp.Status)
			}
		}
		if err != nil {
			failed++
			log.Error("call failed", "err", err.Error())
		}
		if count != 0 && i == count-1 {
			break
		}
		select {
		case <-ctx.Done():
			return failed
		case <-time.After(interval):
		}
	}
	return failed
}
