// Package policy decides which identifiers the CA may certify: allowed and
// denied DNS suffixes and IP ranges, for the whole server and, narrower,
// for the accounts bound to one external account binding key.
package policy

import (
	"fmt"
	"net/netip"
	"strings"
)

// Rules is one set of allow and deny entries. A DNS entry "example.internal"
// covers that name and every name under it; "*.example.internal" covers
// only names under it. An IP entry is a CIDR prefix (a bare address is a
// /32 or /128). Deny wins over allow; empty allow lists allow everything.
type Rules struct {
	AllowDomains []string
	DenyDomains  []string
	AllowIPs     []netip.Prefix
	DenyIPs      []netip.Prefix
}

// ParseEntries sorts textual entries (domain suffixes and CIDRs) into the
// allow lists of a Rules, checking their syntax.
func ParseEntries(entries []string) (Rules, error) {
	var r Rules
	for _, e := range entries {
		e = strings.ToLower(strings.TrimSpace(e))
		if e == "" {
			continue
		}
		if p, err := parsePrefix(e); err == nil {
			r.AllowIPs = append(r.AllowIPs, p)
			continue
		}
		if err := checkSuffix(e); err != nil {
			return Rules{}, err
		}
		r.AllowDomains = append(r.AllowDomains, e)
	}
	return r, nil
}

// ParsePrefixes parses CIDRs or bare addresses.
func ParsePrefixes(entries []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, e := range entries {
		p, err := parsePrefix(strings.TrimSpace(e))
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or CIDR range", e)
		}
		out = append(out, p)
	}
	return out, nil
}

// CheckSuffixes checks the syntax of DNS suffix entries.
func CheckSuffixes(entries []string) error {
	for _, e := range entries {
		if err := checkSuffix(strings.ToLower(e)); err != nil {
			return err
		}
	}
	return nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func checkSuffix(s string) error {
	rest := strings.TrimPrefix(s, "*.")
	if rest == "" || strings.ContainsAny(rest, "*/ ,") || strings.HasPrefix(rest, ".") || strings.HasSuffix(rest, ".") || strings.Contains(rest, "..") {
		return fmt.Errorf("%q is not a DNS suffix (e.g. payments.internal or *.payments.internal)", s)
	}
	return nil
}

// Entries renders the allow lists back to their textual form, for storage
// with an EAB key.
func (r Rules) Entries() []string {
	out := append([]string(nil), r.AllowDomains...)
	for _, p := range r.AllowIPs {
		out = append(out, p.String())
	}
	return out
}

// CheckDNS returns why name (lowercase; "*.x" for a wildcard) is refused,
// or "".
func (r Rules) CheckDNS(name string) string {
	for _, d := range r.DenyDomains {
		if covers(d, name) {
			return fmt.Sprintf("%s is under the denied suffix %s", name, d)
		}
	}
	if len(r.AllowDomains) == 0 {
		if len(r.AllowIPs) > 0 {
			return fmt.Sprintf("%s is not allowed: only IP ranges are", name)
		}
		return ""
	}
	for _, a := range r.AllowDomains {
		if covers(a, name) {
			return ""
		}
	}
	return fmt.Sprintf("%s is not under an allowed suffix (%s)", name, strings.Join(r.AllowDomains, ", "))
}

// CheckIP returns why addr is refused, or "".
func (r Rules) CheckIP(addr netip.Addr) string {
	for _, p := range r.DenyIPs {
		if p.Contains(addr) {
			return fmt.Sprintf("%s is in the denied range %s", addr, p)
		}
	}
	if len(r.AllowIPs) == 0 {
		if len(r.AllowDomains) > 0 {
			return fmt.Sprintf("%s is not allowed: only DNS names are", addr)
		}
		return ""
	}
	for _, p := range r.AllowIPs {
		if p.Contains(addr) {
			return ""
		}
	}
	return fmt.Sprintf("%s is not in an allowed range", addr)
}

// covers reports whether entry covers name. "x.y" covers x.y and names
// under it; "*.x.y" covers names strictly under x.y, including the
// wildcard "*.x.y" itself.
func covers(entry, name string) bool {
	if suffix, ok := strings.CutPrefix(entry, "*."); ok {
		return strings.HasSuffix(name, "."+suffix)
	}
	return name == entry || strings.HasSuffix(name, "."+entry)
}
