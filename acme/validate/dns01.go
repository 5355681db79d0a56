package validate

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// KeyAuthDigest returns base64url(SHA-256(keyAuth)) without padding: the TXT
// value dns-01 expects (RFC 8555 §8.4) and dns-account-01 reuses.
func KeyAuthDigest(keyAuth string) string {
	sum := sha256.Sum256([]byte(keyAuth))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// DNSAccountLabel returns the account-specific label of dns-account-01
// (draft-ietf-acme-dns-account-label §3.1) without its leading underscore:
// lowercase base32 (RFC 4648, no padding) of the first 10 bytes of
// SHA-256(accountURL). The TXT record lives at
// "_" + label + "._acme-challenge." + domain.
func DNSAccountLabel(accountURL string) string {
	sum := sha256.Sum256([]byte(accountURL))
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:10]))
}

// maxTXTShown bounds how many TXT values a failure detail quotes.
const maxTXTShown = 5

// dnsTXT checks that one TXT record at name (CNAMEs followed) equals the key
// authorization digest: RFC 8555 §8.4 for dns-01 and the same rule, at the
// account-labelled name, for dns-account-01.
func (v *Validator) dnsTXT(ctx context.Context, name, keyAuth string) *Error {
	want := KeyAuthDigest(keyAuth)
	rrs, err := v.dns.lookup(ctx, name, dns.TypeTXT)
	if err != nil {
		var le *lookupError
		if errors.As(err, &le) {
			return &Error{Kind: KindDNS, Detail: le.Error()}
		}
		return failf(KindDNS, "DNS problem: looking up TXT for %s failed", name)
	}
	var seen []string
	for _, rr := range rrs {
		txt, ok := rr.(*dns.TXT)
		if !ok {
			continue
		}
		// A TXT record may hold several character-strings; RFC 8555 §8.4
		// digests are short enough for one, but clients that split are
		// joined as DNS libraries do.
		val := strings.Join(txt.Txt, "")
		if val == want {
			return nil
		}
		seen = append(seen, val)
	}
	if len(seen) == 0 {
		return failf(KindUnauthorized, "no TXT record found at %s", name)
	}
	return failf(KindUnauthorized, "no TXT record at %s matched; expected %q, found %s", name, want, quoteList(seen, maxTXTShown))
}

// quoteList renders at most max values as ["a", "b", ...] with each value
// shortened, for failure details.
func quoteList(vals []string, max int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range vals {
		if i == max {
			fmt.Fprintf(&b, ", … %d more", len(vals)-max)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(excerpt(s, 64))
	}
	b.WriteByte(']')
	return b.String()
}

// excerpt quotes s, cut to at most n bytes, for a failure detail.
func excerpt(s string, n int) string {
	if len(s) > n {
		return fmt.Sprintf("%q…", s[:n])
	}
	return fmt.Sprintf("%q", s)
}
