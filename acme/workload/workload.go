// Package workload is the rule for workload identities: the SPIFFE ID
// (spiffe://TRUST-DOMAIN/PATH, SPIFFE-ID spec §2) that an external
// account binding key binds to the accounts registered with it, and that
// their certificates carry as their one URI SAN (X509-SVID spec §2).
//
// The operator names the trust domain once (serve --trust-domain) and a
// path per key (admin eab create --workload). go-spiffe's spiffeid package
// judges the syntax, so certmint accepts exactly what SPIFFE software
// accepts; this package adds the length limits the spec sets and go-spiffe
// leaves to its callers, and the one form each input takes.
package workload

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Limits of SPIFFE-ID spec §2.3: a SPIFFE ID is at most 2048 bytes, its
// trust domain (the URI host, RFC 3986) at most 255.
const (
	MaxIDLength          = 2048
	MaxTrustDomainLength = 255
)

const scheme = "spiffe://"

// ErrNoTrustDomain: a workload identity was asked for while the server has
// no trust domain (serve --trust-domain).
var ErrNoTrustDomain = errors.New("the server has no SPIFFE trust domain; start it with --trust-domain NAME (e.g. corp.example)")

// ParseTrustDomain reads a trust domain name such as "corp.example". A
// SPIFFE ID in its place is refused rather than cut down to its host, so
// a typo in a path cannot quietly become the trust domain. So is a name
// with an empty label (".corp", "corp.", "corp..example"): go-spiffe's
// charset allows it, but the name becomes the host of every certificate's
// URI SAN, which RFC 5280 §4.2.1.6 wants a fully qualified domain name,
// and Go's x509.ParseCertificate refuses such a certificate outright, so
// every workload finalize would fail after signing.
func ParseTrustDomain(name string) (spiffeid.TrustDomain, error) {
	switch {
	case name == "":
		return spiffeid.TrustDomain{}, errors.New("the trust domain name is empty")
	case strings.Contains(name, ":") || strings.Contains(name, "/"):
		return spiffeid.TrustDomain{}, errors.New("give the trust domain name only (e.g. corp.example), not a URI")
	case len(name) > MaxTrustDomainLength:
		return spiffeid.TrustDomain{}, fmt.Errorf("the trust domain name has %d bytes; at most %d are allowed (SPIFFE-ID §2.3)", len(name), MaxTrustDomainLength)
	case strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, ".."):
		return spiffeid.TrustDomain{}, errors.New("the trust domain name has an empty label (a leading, trailing or doubled dot); certificates name it as a host (RFC 5280 §4.2.1.6)")
	}
	td, err := spiffeid.TrustDomainFromString(name)
	if err != nil {
		return spiffeid.TrustDomain{}, err
	}
	return td, nil
}

// ParsePath reads a workload path as the operator types it,
// "payments/sender" or "/payments/sender", and returns the SPIFFE form
// with its leading slash. It must have at least one segment (an X509-SVID
// leaf has a non-root path, X509-SVID §3.1), and no empty, "." or ".."
// segment, percent-encoding or character outside letters, digits, ".",
// "-" and "_" (SPIFFE-ID §2.2). A whole SPIFFE ID is refused: the trust
// domain is the server's, not the key's.
func ParsePath(path string) (string, error) {
	path = strings.TrimSpace(path)
	switch {
	case path == "" || path == "/":
		return "", errors.New("the workload path is empty; give at least one segment, e.g. payments/sender")
	case strings.HasPrefix(strings.ToLower(path), "spiffe:"):
		return "", errors.New("give the path only (e.g. payments/sender); the trust domain comes from the server's --trust-domain")
	}
	if path[0] != '/' {
		path = "/" + path
	}
	if err := spiffeid.ValidatePath(path); err != nil {
		return "", fmt.Errorf("%q is not a SPIFFE ID path: %w", strings.TrimPrefix(path, "/"), err)
	}
	// The shortest trust domain has one byte.
	if n := len(scheme) + 1 + len(path); n > MaxIDLength {
		return "", fmt.Errorf("the workload path has %d bytes; a SPIFFE ID is at most %d bytes (SPIFFE-ID §2.3)", len(path), MaxIDLength)
	}
	return path, nil
}

// ID is the SPIFFE ID of path (as ParsePath returns it) in trust domain
// td: ErrNoTrustDomain without one, an error when the two together exceed
// the 2048 bytes of SPIFFE-ID §2.3.
func ID(td spiffeid.TrustDomain, path string) (spiffeid.ID, error) {
	if td.IsZero() {
		return spiffeid.ID{}, ErrNoTrustDomain
	}
	id, err := spiffeid.FromPath(td, path)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("workload path %q: %w", path, err)
	}
	if n := len(id.String()); n > MaxIDLength {
		return spiffeid.ID{}, fmt.Errorf("the SPIFFE ID of workload %q in %s has %d bytes; at most %d are allowed (SPIFFE-ID §2.3)", path, td, n, MaxIDLength)
	}
	return id, nil
}
