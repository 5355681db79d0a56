package agent

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"
)

// Key types for the certificate key (Config.KeyType).
const (
	KeyEC256   = "ec256"
	KeyEC384   = "ec384"
	KeyRSA2048 = "rsa2048"
)

// Config is what an agent needs; New validates it once.
type Config struct {
	// DirectoryURL is the ACME directory, e.g.
	// https://ca.internal:8443/acme/directory.
	DirectoryURL string
	// RootFile is a PEM file with the CA root to trust. Alternatively
	// RootFingerprint pins the root by the SHA-256 of its DER (hex, colons
	// allowed): the agent fetches /roots/bundle.pem from the ACME host
	// without trusting TLS, checks the pin and from then on trusts only
	// that root (the `step ca bootstrap` model). One of the two is required.
	RootFile        string
	RootFingerprint string

	// Names are the DNS names and IP addresses of the certificate.
	Names []string
	// KeyType is ec256 (default), ec384 or rsa2048. A fresh key is made
	// for every certificate.
	KeyType string
	// Profile is the ACME profile to ask for (draft-ietf-acme-profiles);
	// empty for the server's default.
	Profile string
	// Email is an optional account contact.
	Email string
	// EABKeyID and EABHMAC are External Account Binding credentials
	// (RFC 8555 §7.3.4); the HMAC key is base64url as the server printed it.
	EABKeyID string
	EABHMAC  string

	// Exactly one challenge mode: http-01 served on HTTP01Listen,
	// tls-alpn-01 served on TLSALPN01Listen (both host:port), or dns-01
	// through the hook command DNS01Hook (see DNSHook for its contract).
	HTTP01Listen    string
	TLSALPN01Listen string
	DNS01Hook       string
	// DNS01Resolvers, when set, makes the agent wait until these resolvers
	// serve the TXT record before asking for validation. Without them the
	// hook's "present" is trusted to return only once the record is live.
	DNS01Resolvers []string
	// DNSPersist answers dns-persist-01 (draft-ietf-acme-dns-persist)
	// instead: the _validation-persist record is published once by the
	// operator, so the agent needs no DNS credentials and no listener.
	DNSPersist bool

	// StateDir keeps the account and the certificate between runs (created
	// 0700): account.key, account.json, key.pem (0600), cert.pem,
	// chain.pem, fullchain.pem and root.pem.
	StateDir string

	// OnRenew is called after every new certificate is stored (the first
	// one included), from the agent's goroutine; it must not block long.
	OnRenew func(cert *tls.Certificate)
	// OnBundle is called when the CA's bundle of roots changed (a root
	// rotation), after root.pem is written, from the agent's goroutine.
	OnBundle func(roots []*x509.Certificate)
	// OnEvent is called once per action (obtained, renewed, unchanged),
	// from the agent's goroutine, after OnRenew; it must not block long.
	OnEvent func(Event)
	// OnError is called after a failed renewal with the delay before the
	// next attempt.
	OnError func(err error, retryIn time.Duration)

	// RetryMin and RetryMax bound the exponential backoff after a failed
	// renewal (defaults 10s and 1h). Near expiry the delay shrinks to a
	// third of the remaining lifetime: the final push.
	RetryMin, RetryMax time.Duration
	// Timeout bounds one certificate order (default 60s).
	Timeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
}

// ErrConfig marks a configuration error: the caller should fix its
// configuration rather than retry.
var ErrConfig = errors.New("invalid agent configuration")

func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
}

// normalize fills defaults and checks the configuration.
func (c *Config) normalize() error {
	u, err := url.Parse(c.DirectoryURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return configErr("directory URL %q must be https://HOST[:PORT]/...", c.DirectoryURL)
	}
	if c.RootFile == "" && c.RootFingerprint == "" {
		return configErr("a root file or a root fingerprint is required to trust the CA")
	}
	if c.RootFingerprint != "" {
		if _, err := parseFingerprint(c.RootFingerprint); err != nil {
			return configErr("%v", err)
		}
	}
	if len(c.Names) == 0 {
		return configErr("at least one name is required")
	}
	for i, n := range c.Names {
		n = strings.TrimSpace(strings.ToLower(n))
		if n == "" {
			return configErr("empty name")
		}
		if ip := net.ParseIP(n); ip != nil {
			n = ip.String()
		}
		c.Names[i] = n
	}
	switch c.KeyType {
	case "":
		c.KeyType = KeyEC256
	case KeyEC256, KeyEC384, KeyRSA2048:
	default:
		return configErr("key type %q must be ec256, ec384 or rsa2048", c.KeyType)
	}
	if (c.EABKeyID == "") != (c.EABHMAC == "") {
		return configErr("EAB needs both the key id and the HMAC key")
	}
	modes := 0
	if c.DNSPersist {
		modes++
	}
	for _, m := range []string{c.HTTP01Listen, c.TLSALPN01Listen, c.DNS01Hook} {
		if m != "" {
			modes++
		}
	}
	if modes != 1 {
		return configErr("exactly one challenge mode is required: http-01 listen address, tls-alpn-01 listen address, dns-01 hook or dns-persist-01")
	}
	for _, addr := range []string{c.HTTP01Listen, c.TLSALPN01Listen} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return configErr("challenge listen address %q must be HOST:PORT", addr)
		}
	}
	if c.StateDir == "" {
		return configErr("a state directory is required")
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 10 * time.Second
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = max(time.Hour, c.RetryMin)
	}
	if c.Timeout <= 0 {
		c.Timeout = 60 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// newKey makes a certificate key of the configured type.
func newKey(kind string) (crypto.Signer, error) {
	switch kind {
	case KeyEC384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case KeyRSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	default:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
}
