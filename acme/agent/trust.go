package agent

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/certmint/certmint/internal/truststore"
)

// ErrFingerprintMismatch means the root the server offered is not the
// pinned one: someone may be in the middle, or the pin is wrong.
var ErrFingerprintMismatch = errors.New("root fingerprint mismatch")

// Fingerprint is the SHA-256 of a certificate's DER, lower-case hex.
func Fingerprint(cert *x509.Certificate) string { return truststore.Fingerprint(cert) }

// parseFingerprint accepts hex with or without colons or spaces and an
// optional "sha256:" prefix.
func parseFingerprint(s string) (string, error) { return truststore.ParseFingerprint(s) }

// parseCerts returns every CERTIFICATE block of a PEM text.
func parseCerts(data []byte) ([]*x509.Certificate, error) { return truststore.ParseCerts(data) }

func encodeCerts(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// loadRoot resolves the trusted root: from RootFile, else from the copy in
// the state directory when it matches the pin, else fetched from the
// server and checked against the pin. The root is stored in the state
// directory so a restart needs no network.
func loadRoot(cfg *Config) (*x509.Certificate, error) {
	var pin string
	if cfg.RootFingerprint != "" {
		pin, _ = parseFingerprint(cfg.RootFingerprint)
	}
	if cfg.RootFile != "" {
		data, err := os.ReadFile(cfg.RootFile)
		if err != nil {
			return nil, fmt.Errorf("read root file: %w", err)
		}
		certs, err := parseCerts(data)
		if err != nil {
			return nil, fmt.Errorf("root file %s: %w", cfg.RootFile, err)
		}
		if pin != "" && Fingerprint(certs[0]) != pin {
			return nil, fmt.Errorf("%w: root file %s has SHA-256 %s, pinned %s", ErrFingerprintMismatch, cfg.RootFile, Fingerprint(certs[0]), pin)
		}
		return certs[0], nil
	}
	if data, err := os.ReadFile(filepath.Join(cfg.StateDir, fileRoot)); err == nil {
		if certs, err := parseCerts(data); err == nil && Fingerprint(certs[0]) == pin {
			return certs[0], nil
		}
	}
	return fetchPinnedRoot(cfg.DirectoryURL, pin)
}

// rootURL is GET /roots/bundle.pem on the ACME listener: the pinned root
// is found among every root the CA publishes, so a pin on the new root
// works during a root rotation's overlap too.
func rootURL(directory string) (string, error) {
	u, err := url.Parse(directory)
	if err != nil {
		return "", err
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: truststore.BundlePath}).String(), nil
}

// fetchPinnedRoot downloads the root without verifying TLS (the server's
// TLS certificate chains to the very root being fetched, so it cannot be
// verified yet); integrity comes from the SHA-256 pin alone.
func fetchPinnedRoot(directory, pin string) (*x509.Certificate, error) {
	u, err := rootURL(directory)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // checked by the pin below
	}}
	resp, err := client.Get(u)
	if err != nil {
		return nil, fmt.Errorf("fetch root from %s: %w", u, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch root from %s: HTTP %s", u, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("fetch root from %s: %w", u, err)
	}
	certs, err := parseCerts(data)
	if err != nil {
		return nil, fmt.Errorf("fetch root from %s: %w", u, err)
	}
	for _, c := range certs {
		if Fingerprint(c) == pin {
			return c, nil
		}
	}
	return nil, fmt.Errorf("%w: %s serves a root with SHA-256 %s, but %s is pinned", ErrFingerprintMismatch, u, Fingerprint(certs[0]), pin)
}

// unwrapURLError drops the "Get URL:" prefix that url.Error repeats.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
