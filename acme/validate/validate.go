// Package validate performs the outbound half of ACME challenge validation:
// it connects to the applicant's HTTP server (RFC 8555 §8.3), looks up DNS
// TXT records (RFC 8555 §8.4, draft-ietf-acme-dns-account-label and
// draft-ietf-acme-dns-persist) or
// performs a TLS handshake (RFC 8737), and says whether the challenge is
// satisfied. It knows nothing of storage or of the ACME HTTP handlers; the
// caller maps an *Error to an RFC 8555 problem document.
//
// Every name is resolved through the configured hosts tables and DNS server
// (see resolver) and every address
// dialled passes the network policy (see Config.Allowed), so an applicant
// cannot point the server at link-local or cloud-metadata endpoints, not even
// through a redirect.
package validate

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Challenge types (RFC 8555 §8.3, §8.4, RFC 8737, draft-ietf-acme-dns-account-label).
const (
	TypeHTTP01       = "http-01"
	TypeDNS01        = "dns-01"
	TypeTLSALPN01    = "tls-alpn-01"
	TypeDNSAccount01 = "dns-account-01"
)

// Identifier types (RFC 8555 §9.7.7, RFC 8738).
const (
	IdentDNS = "dns"
	IdentIP  = "ip"
)

// Config sets where validation connects and what it may reach. The zero
// value is usable: every zero field takes the documented default.
type Config struct {
	HTTPPort     int           // port http-01 connects to (default 80)
	TLSALPNPort  int           // port tls-alpn-01 connects to (default 443)
	Resolver     string        // "host:port" of the DNS server for all look-ups; "" = /etc/hosts, then /etc/resolv.conf
	HostsFile    string        // hosts(5) file consulted first for addresses (--validation-hosts); "" = none
	Timeout      time.Duration // whole validation attempt (default 10s)
	DialTimeout  time.Duration // one TCP connect or one DNS query (default 5s)
	MaxRedirects int           // http-01 redirects followed (default 10)
	MaxBody      int64         // http-01 body cap in bytes (default 8 KiB)

	// Allowed, if non-empty, is the only address space validation may dial;
	// an address in it is allowed even if a default deny covers it.
	// Denied is added to the default denies (link-local, cloud metadata,
	// unspecified, multicast) and always wins.
	Allowed, Denied []netip.Prefix

	// Now is the clock dns-persist-01 judges persistUntil by (default time.Now).
	Now func() time.Time
}

// Defaults applied by New to zero fields of Config.
const (
	DefaultHTTPPort     = 80
	DefaultTLSALPNPort  = 443
	DefaultTimeout      = 10 * time.Second
	DefaultDialTimeout  = 5 * time.Second
	DefaultMaxRedirects = 10
	DefaultMaxBody      = 8 << 10
)

func (c Config) withDefaults() Config {
	if c.HTTPPort <= 0 {
		c.HTTPPort = DefaultHTTPPort
	}
	if c.TLSALPNPort <= 0 {
		c.TLSALPNPort = DefaultTLSALPNPort
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.MaxRedirects <= 0 {
		c.MaxRedirects = DefaultMaxRedirects
	}
	if c.MaxBody <= 0 {
		c.MaxBody = DefaultMaxBody
	}
	return c
}

// Kind is the RFC 8555 §6.7 problem type (without the
// "urn:ietf:params:acme:error:" prefix) that a failed validation maps to.
type Kind string

// Problem kinds a validation failure can carry.
const (
	KindConnection        Kind = "connection"
	KindDNS               Kind = "dns"
	KindIncorrectResponse Kind = "incorrectResponse"
	KindTLS               Kind = "tls"
	KindUnauthorized      Kind = "unauthorized"
	KindMalformed         Kind = "malformed"
)

// Error is a failed validation. Detail is meant for the applicant: it names
// the address dialled and what came back, and holds no server internals.
type Error struct {
	Kind   Kind
	Detail string
}

func (e *Error) Error() string { return string(e.Kind) + ": " + e.Detail }

func failf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Detail: fmt.Sprintf(format, args...)}
}

// Request is one challenge to validate.
type Request struct {
	Type       string // TypeHTTP01, TypeDNS01, TypeTLSALPN01, TypeDNSAccount01 or TypeDNSPersist01
	IdentType  string // IdentDNS or IdentIP
	Value      string // identifier value, lowercase, without "*."
	Token      string // challenge token (RFC 8555 §8.1)
	KeyAuth    string // token "." base64url(JWK thumbprint), RFC 8555 §8.1
	AccountURL string // account URL, for the dns-account-01 label and dns-persist-01

	// dns-persist-01 only: the issuer domain names the server offered and
	// whether the identifier is a wildcard (which needs policy=wildcard).
	IssuerDomainNames []string
	Wildcard          bool
	// AccountHashPrefix and KeyThumbprint (the account key's RFC 7638
	// thumbprint) let dns-persist-01 accept hashed account URIs too.
	AccountHashPrefix string
	KeyThumbprint     string
}

// Validator validates challenges. It is safe for concurrent use.
type Validator struct {
	cfg    Config
	policy policy
	dns    *resolver
}

// New returns a Validator for cfg, with defaults filled in.
func New(cfg Config) *Validator {
	cfg = cfg.withDefaults()
	return &Validator{
		cfg:    cfg,
		policy: newPolicy(cfg.Allowed, cfg.Denied),
		dns:    newResolver(cfg.Resolver, cfg.DialTimeout, cfg.HostsFile, systemHostsFile),
	}
}

// ErrUnsupported is returned (wrapped) for a request the validator cannot
// act on at all, such as an unknown challenge type or dns-01 on an IP
// identifier. It is a caller bug, not an applicant failure.
var ErrUnsupported = errors.New("unsupported challenge request")

// Validate returns nil when the challenge is satisfied and an *Error when it
// is not. The attempt is bounded by Config.Timeout and by ctx. If ctx itself
// ends first, Validate returns ctx's error (not an *Error), so a caller that
// is shutting down can retry later instead of failing the challenge; a
// malformed request returns an error wrapping ErrUnsupported.
func (v *Validator) Validate(ctx context.Context, r Request) error {
	if err := checkRequest(r); err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
	defer cancel()

	var err *Error
	switch r.Type {
	case TypeHTTP01:
		err = v.http01(actx, r)
	case TypeDNS01:
		err = v.dnsTXT(actx, "_acme-challenge."+r.Value, r.KeyAuth)
	case TypeDNSAccount01:
		name := "_" + DNSAccountLabel(r.AccountURL) + "._acme-challenge." + r.Value
		err = v.dnsTXT(actx, name, r.KeyAuth)
	case TypeTLSALPN01:
		err = v.tlsALPN01(actx, r)
	case TypeDNSPersist01:
		_, err = v.dnsPersist(actx, r)
	}
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("validate %s for %s: %w", r.Type, r.Value, cerr)
	}
	return err
}

func checkRequest(r Request) error {
	switch r.IdentType {
	case IdentDNS:
		if r.Value == "" {
			return fmt.Errorf("%w: empty identifier", ErrUnsupported)
		}
	case IdentIP:
		if _, err := netip.ParseAddr(r.Value); err != nil {
			return fmt.Errorf("%w: ip identifier %q: %v", ErrUnsupported, r.Value, err)
		}
	default:
		return fmt.Errorf("%w: identifier type %q", ErrUnsupported, r.IdentType)
	}
	// The table in types.go decides which identifiers a type can prove;
	// a wildcard's value arrives here without its "*.", so it is checked
	// as a plain name (the order offered it only DNS challenges).
	if !Allowed(r.Type, r.IdentType, false) {
		return fmt.Errorf("%w: challenge type %q for %s identifier", ErrUnsupported, r.Type, r.IdentType)
	}
	if (r.Type == TypeDNSAccount01 || r.Type == TypeDNSPersist01) && r.AccountURL == "" {
		return fmt.Errorf("%w: %s without account URL", ErrUnsupported, r.Type)
	}
	if r.Type == TypeDNSPersist01 && len(r.IssuerDomainNames) == 0 {
		return fmt.Errorf("%w: dns-persist-01 without issuer domain names", ErrUnsupported)
	}
	return nil
}
