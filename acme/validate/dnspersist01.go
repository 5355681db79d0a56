package validate

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// dns-persist-01 (draft-ietf-acme-dns-persist-01, the revision lego v5,
// acme.sh and acme4j speak): the applicant publishes one long-lived TXT
// record at "_validation-persist.<name>" naming the CA (an issuer domain
// name) and the ACME account allowed to issue for the name; the record
// stays in place across renewals, so no host needs DNS credentials or an
// open port.
const (
	TypeDNSPersist01 = "dns-persist-01"
	// PersistLabel is the label prepended to the validated name (§4).
	PersistLabel = "_validation-persist"
)

// maxPersistParents bounds how many parent names are asked for a record
// with policy=wildcard (§6) after the name itself had none: a name has at
// most a few labels in practice, and every ask is a DNS query.
const maxPersistParents = 8

// PersistRecord is one parsed _validation-persist TXT record: an RFC 8659
// §4.2 issue-value whose parameters the draft defines in §4.1.
type PersistRecord struct {
	IssuerDomainName string     // lowercase, no trailing dot
	AccountURI       string     // compared exactly (RFC 3986 §6.2.1)
	Wildcard         bool       // policy=wildcard (value case-insensitive)
	PersistUntil     *time.Time // persistUntil, if present
}

// PersistMatch is the record that satisfied a dns-persist-01 validation:
// where it was found, its text, and the time after which it may no longer
// be relied on (§4.1 item 5), if it set one.
type PersistMatch struct {
	Name         string // e.g. "_validation-persist.svc.internal"
	Record       string // the TXT value as published
	PersistUntil *time.Time
}

// FormatPersistRecord returns the TXT value to publish so that accountURL
// may issue through a CA with the given issuer domain name (§4.1); with
// wildcard it also covers wildcards and subdomains (§5), and a non-nil
// until bounds it (persistUntil).
func FormatPersistRecord(issuer, accountURL string, wildcard bool, until *time.Time) string {
	v := issuer + "; accounturi=" + accountURL
	if wildcard {
		v += "; policy=wildcard"
	}
	if until != nil {
		v += "; persistUntil=" + strconv.FormatInt(until.Unix(), 10)
	}
	return v
}

// HashedAccountURI returns the hashed account URI of
// draft-ietf-acme-dns-persist-02 §4.1, which binds a record to the account
// without publishing the account URL:
//
//	prefix "sha-256/" base64url(SHA-256(len(domain) || domain || thumbprint || accountURL))
//
// domain is the name the record is published for (without the
// _validation-persist label), or "*" for a record meant for any domain;
// thumbprint is the account key's RFC 7638 thumbprint, base64url.
func HashedAccountURI(prefix, domain, thumbprint, accountURL string) string {
	h := sha256.New()
	h.Write([]byte{byte(len(domain))})
	h.Write([]byte(domain))
	h.Write([]byte(thumbprint))
	h.Write([]byte(accountURL))
	return prefix + "sha-256/" + base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// namesAccount reports whether a record's accounturi names the requesting
// account: its URL as is (draft -01, what lego v5 writes) or, when the
// server has an account hash prefix, a hashed URI over the account's
// current key for the record's own domain or for "*" (draft -02 §4.2).
func namesAccount(accountURI string, r Request, domain string) bool {
	if accountURI == r.AccountURL {
		return true
	}
	if r.AccountHashPrefix == "" || r.KeyThumbprint == "" || !strings.HasPrefix(accountURI, r.AccountHashPrefix) {
		return false
	}
	return accountURI == HashedAccountURI(r.AccountHashPrefix, domain, r.KeyThumbprint, r.AccountURL) ||
		accountURI == HashedAccountURI(r.AccountHashPrefix, "*", r.KeyThumbprint, r.AccountURL)
}

// NormalizeIssuer puts an issuer domain name in the form §3.1 asks for:
// lowercase, without a trailing dot. It reports false for a value that is
// not a plausible A-label domain name.
func NormalizeIssuer(name string) (string, bool) {
	n := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
	if n == "" || len(n) > 253 {
		return "", false
	}
	for _, l := range strings.Split(n, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", false
			}
		}
	}
	return n, true
}

// ParsePersistRecord parses an RFC 8659 §4.2 issue-value:
//
//	issuer-domain-name *WSP [";" *WSP [tag *WSP "=" *WSP value *WSP] ...]
//
// Unknown tags are ignored (§4.1 item 1); tags compare case-insensitively
// (RFC 8659 §4.2). A duplicate tag, a bad value character, a missing
// accounturi or a persistUntil that is not a base-10 integer make the
// record malformed.
func ParsePersistRecord(s string) (PersistRecord, error) {
	var r PersistRecord
	parts := strings.Split(s, ";")
	issuer, ok := NormalizeIssuer(trimWSP(parts[0]))
	if !ok {
		return r, errors.New("no valid issuer-domain-name")
	}
	r.IssuerDomainName = issuer
	seen := map[string]bool{}
	for i, raw := range parts[1:] {
		p := trimWSP(raw)
		if p == "" {
			if i == len(parts)-2 {
				break // RFC 8659 allows a trailing ";" with no parameters
			}
			return r, errors.New("empty parameter")
		}
		tag, val, found := strings.Cut(p, "=")
		tag, val = strings.ToLower(trimWSP(tag)), trimWSP(val)
		if !found || !validTag(tag) {
			return r, fmt.Errorf("malformed parameter %q", excerpt(p, 32))
		}
		if seen[tag] {
			return r, fmt.Errorf("duplicate parameter %q", tag)
		}
		seen[tag] = true
		for j := 0; j < len(val); j++ {
			if c := val[j]; c < 0x21 || c > 0x7e || c == ';' {
				return r, fmt.Errorf("malformed value for %q", tag)
			}
		}
		switch tag {
		case "accounturi":
			r.AccountURI = val
		case "policy":
			// §4.1 item 4: any value but "wildcard" is as if absent.
			r.Wildcard = strings.EqualFold(val, "wildcard")
		case "persistuntil":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return r, errors.New("persistUntil is not a base-10 integer")
			}
			t := time.Unix(n, 0).UTC()
			r.PersistUntil = &t
		}
	}
	if r.AccountURI == "" {
		return r, errors.New("no accounturi")
	}
	return r, nil
}

// validTag checks RFC 8659's tag = (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT)).
func validTag(t string) bool {
	if t == "" || t[0] == '-' || t[len(t)-1] == '-' {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func trimWSP(s string) string { return strings.Trim(s, " \t") }

// ValidatePersist validates a dns-persist-01 challenge (§4.2) and returns
// the record that satisfied it. It looks up TXT records at
// "_validation-persist.<name>" and accepts one whose issuer-domain-name is
// among r.IssuerDomainNames, whose accounturi names the account (its URL,
// or a hashed URI: see namesAccount) and whose
// persistUntil has not passed; a wildcard identifier needs policy=wildcard.
// When the name itself has no such record, its parent names are asked
// for one with policy=wildcard, which covers subdomains (§5.1, §6.1).
// Malformed records and records for other CAs are skipped, not fatal.
func (v *Validator) ValidatePersist(ctx context.Context, r Request) (*PersistMatch, error) {
	r.Type = TypeDNSPersist01
	if err := checkRequest(r); err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
	defer cancel()
	m, verr := v.dnsPersist(actx, r)
	if verr == nil {
		return m, nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return nil, fmt.Errorf("validate %s for %s: %w", r.Type, r.Value, cerr)
	}
	return nil, verr
}

func (v *Validator) dnsPersist(ctx context.Context, r Request) (*PersistMatch, *Error) {
	now := time.Now()
	if v.cfg.Now != nil {
		now = v.cfg.Now()
	}
	issuers := map[string]bool{}
	for _, n := range r.IssuerDomainNames {
		if n, ok := NormalizeIssuer(n); ok {
			issuers[n] = true
		}
	}
	var notes []string
	malformed := 0 // notes about records of this CA that do not parse
	name := r.Value
	for depth := 0; depth <= maxPersistParents; depth++ {
		// The name itself needs policy=wildcard only for a wildcard
		// identifier; a parent's record always needs it (§6.2).
		needWildcard := r.Wildcard || depth > 0
		qname := PersistLabel + "." + name
		rrs, err := v.dns.lookup(ctx, qname, dns.TypeTXT)
		var le *lookupError
		switch {
		case errors.As(err, &le) && le.err == nil && le.rcode == dns.RcodeNameError:
			// No record here (NXDOMAIN): ask the parent.
		case errors.As(err, &le):
			return nil, &Error{Kind: KindDNS, Detail: le.Error()}
		case err != nil:
			return nil, failf(KindDNS, "DNS problem: looking up TXT for %s failed", qname)
		}
		for _, rr := range rrs {
			txt, ok := rr.(*dns.TXT)
			if !ok {
				continue
			}
			val := strings.Join(txt.Txt, "")
			rec, perr := ParsePersistRecord(val)
			why := ""
			switch {
			case perr != nil && !issuers[rec.IssuerDomainName]:
				continue // not recognizably this CA's record
			case perr != nil:
				why = "malformed: " + perr.Error()
				malformed++
			case !issuers[rec.IssuerDomainName]:
				continue // §4.3.2: records for other CAs are ignored
			case !namesAccount(rec.AccountURI, r, name):
				why = "accounturi names another account"
			case rec.PersistUntil != nil && !now.Before(*rec.PersistUntil):
				why = "persistUntil has passed"
			case depth > 0 && !rec.Wildcard:
				continue // a parent's record without policy=wildcard covers only the parent
			case needWildcard && !rec.Wildcard:
				why = "policy=wildcard is needed for a wildcard"
			default:
				return &PersistMatch{Name: qname, Record: val, PersistUntil: rec.PersistUntil}, nil
			}
			notes = append(notes, fmt.Sprintf("%s %s (%s)", qname, excerpt(val, 96), why))
		}
		parent, ok := strings.CutPrefix(name, name[:strings.IndexByte(name+".", '.')]+".")
		if !ok || !strings.Contains(parent, ".") {
			break // no parent, or a top-level name: no record above it counts
		}
		name = parent
	}
	if len(notes) == 0 {
		return nil, failf(KindUnauthorized, "no TXT record at %s.%s names this CA (issuer domain names %s)",
			PersistLabel, r.Value, quoteList(r.IssuerDomainNames, maxTXTShown))
	}
	// §9.3.1: a record of this CA with bad syntax is malformed, any other
	// refusal unauthorized.
	kind := KindUnauthorized
	if malformed == len(notes) {
		kind = KindMalformed
	}
	if len(notes) > maxTXTShown {
		notes = append(notes[:maxTXTShown], fmt.Sprintf("… %d more", len(notes)-maxTXTShown))
	}
	return nil, failf(kind, "no %s TXT record authorizes account %s for %s: %s",
		PersistLabel, r.AccountURL, r.Value, strings.Join(notes, "; "))
}
