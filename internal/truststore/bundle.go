package truststore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// BundlePath is where a certmint server serves every root to trust now.
const BundlePath = "/roots/bundle.pem"

// ErrFingerprintMismatch means the server's bundle lacks the pinned root,
// or its TLS certificate does not chain to it.
var ErrFingerprintMismatch = errors.New("root fingerprint mismatch")

// BundleURL is the bundle's URL on the host of a server URL (the ACME
// directory URL or just https://HOST:PORT).
func BundleURL(server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("server URL %q must be https://HOST[:PORT][/acme/directory]", server)
	}
	return (&url.URL{Scheme: "https", Host: u.Host, Path: BundlePath}).String(), nil
}

// AccountHeader carries an agent's ACME account URL on its fetches of the
// bundle, so the server's console can show which agents hold the current
// roots. It is the agent's own report: informative, never authority.
const AccountHeader = "Certmint-Account"

// FetchPinned downloads the bundle from server when nothing is trusted
// yet but the root's fingerprint. The bundle is accepted only if it holds
// the pinned root and the server's own TLS certificate chains to that
// root: then the whole bundle came from the CA's server, not only the
// pinned root, so its other roots can be trusted too.
func FetchPinned(ctx context.Context, server, pin string) ([]*x509.Certificate, error) {
	u, err := BundleURL(server)
	if err != nil {
		return nil, err
	}
	var peer []*x509.Certificate
	cfg := &tls.Config{
		// Verified below against the pinned root: it is not known before
		// the bundle is read.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			peer = cs.PeerCertificates
			return nil
		},
	}
	roots, err := get(ctx, u, cfg)
	if err != nil {
		return nil, err
	}
	var pinned *x509.Certificate
	for _, c := range roots {
		if Fingerprint(c) == pin {
			pinned = c
		}
	}
	if pinned == nil {
		return nil, fmt.Errorf("%w: %s does not hold the root with SHA-256 %s", ErrFingerprintMismatch, u, pin)
	}
	if len(peer) == 0 {
		return nil, fmt.Errorf("%s: the server sent no TLS certificate", u)
	}
	pool := x509.NewCertPool()
	pool.AddCert(pinned)
	inter := x509.NewCertPool()
	for _, c := range peer[1:] {
		inter.AddCert(c)
	}
	host, _, err := net.SplitHostPort(hostPort(u))
	if err != nil {
		return nil, err
	}
	if _, err := peer[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: host}); err != nil {
		return nil, fmt.Errorf("%w: the TLS certificate of %s does not chain to the pinned root: %v", ErrFingerprintMismatch, u, err)
	}
	return roots, nil
}

// Fetch downloads the bundle over TLS verified against roots: the agent's
// way, which already trusts the CA.
func Fetch(ctx context.Context, server string, roots *x509.CertPool) ([]*x509.Certificate, error) {
	return FetchAs(ctx, server, roots, "")
}

// FetchAs is Fetch naming the agent's ACME account URL in AccountHeader
// (when not empty), so the server can show who holds the current roots.
func FetchAs(ctx context.Context, server string, roots *x509.CertPool, account string) ([]*x509.Certificate, error) {
	u, err := BundleURL(server)
	if err != nil {
		return nil, err
	}
	return getAs(ctx, u, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, account)
}

func hostPort(u string) string {
	p, _ := url.Parse(u)
	if p.Port() == "" {
		return net.JoinHostPort(p.Hostname(), "443")
	}
	return p.Host
}

// get reads a PEM bundle of CA certificates, at most 1 MiB, in 30 s.
func get(ctx context.Context, u string, cfg *tls.Config) ([]*x509.Certificate, error) {
	return getAs(ctx, u, cfg, "")
}

func getAs(ctx context.Context, u string, cfg *tls.Config, account string) ([]*x509.Certificate, error) {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if account != "" {
		req.Header.Set(AccountHeader, account)
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("fetch %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: HTTP %s", u, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", u, err)
	}
	roots, err := ParseRoots(data)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", u, err)
	}
	return roots, nil
}
