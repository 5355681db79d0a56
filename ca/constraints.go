package ca

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// NameConstraints restrict the names an intermediate may certify
// (RFC 5280 §4.2.1.10). A DNS entry "svc.test" covers that name and every
// name under it; ".svc.test" only the names under it. An IP entry is a
// CIDR range.
type NameConstraints struct {
	PermittedDNS []string
	ExcludedDNS  []string
	PermittedIPs []netip.Prefix
	ExcludedIPs  []netip.Prefix
}

// Empty reports whether n constrains nothing.
func (n NameConstraints) Empty() bool {
	return len(n.PermittedDNS)+len(n.ExcludedDNS)+len(n.PermittedIPs)+len(n.ExcludedIPs) == 0
}

// apply puts n into a CA certificate template as a critical extension.
//
// A name type given no permitted entry is unrestricted by RFC 5280, so
// `--permitted-dns svc.test` alone would still let the intermediate
// certify any IP address. What an operator means is "only svc.test", so
// once anything is permitted, each type with no permitted entry is closed
// by an excluded subtree covering all of it, as the CA/Browser Forum
// requires of technically constrained CAs (BR §7.1.2.5.2).
func (n NameConstraints) apply(t *x509.Certificate) {
	if n.Empty() {
		return
	}
	t.PermittedDNSDomainsCritical = true
	t.PermittedDNSDomains = append([]string(nil), n.PermittedDNS...)
	t.ExcludedDNSDomains = append([]string(nil), n.ExcludedDNS...)
	t.PermittedIPRanges = ipNets(n.PermittedIPs)
	t.ExcludedIPRanges = ipNets(n.ExcludedIPs)
	anyPermitted := len(n.PermittedDNS)+len(n.PermittedIPs) > 0
	if anyPermitted && len(n.PermittedDNS) == 0 {
		t.ExcludedDNSDomains = append(t.ExcludedDNSDomains, "") // every DNS name
	}
	if anyPermitted && len(n.PermittedIPs) == 0 {
		t.ExcludedIPRanges = append(t.ExcludedIPRanges,
			&net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
			&net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)})
	}
}

func ipNets(ps []netip.Prefix) []*net.IPNet {
	var out []*net.IPNet
	for _, p := range ps {
		p = p.Masked()
		out = append(out, &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())})
	}
	return out
}

// constraintSet is the name constraints one CA certificate carries.
type constraintSet struct {
	who                       string // "intermediate \"CN\"", for messages
	permittedDNS, excludedDNS []string
	permittedIP, excludedIP   []*net.IPNet
	permittedURI, excludedURI []string // hosts; certmint's own CAs set none, an imported one may
}

// chainConstraints reads the constraints of each CA certificate that has
// any; a leaf must satisfy all of them (RFC 5280 §6.1.3 (b), (c)).
func chainConstraints(certs ...*x509.Certificate) []constraintSet {
	var out []constraintSet
	for _, c := range certs {
		if len(c.PermittedDNSDomains)+len(c.ExcludedDNSDomains)+len(c.PermittedIPRanges)+len(c.ExcludedIPRanges)+
			len(c.PermittedURIDomains)+len(c.ExcludedURIDomains) == 0 {
			continue
		}
		out = append(out, constraintSet{who: fmt.Sprintf("%q", c.Subject.CommonName),
			permittedDNS: c.PermittedDNSDomains, excludedDNS: c.ExcludedDNSDomains,
			permittedIP: c.PermittedIPRanges, excludedIP: c.ExcludedIPRanges,
			permittedURI: c.PermittedURIDomains, excludedURI: c.ExcludedURIDomains})
	}
	return out
}

// Permits says whether the active issuer's chain may certify the
// identifier: typ is "dns" or "ip" (RFC 8555 §9.7.7, RFC 8738), value a
// DNS name (a wildcard "*.x" included) or an IP address; or typ is "uri"
// and value a workload's SPIFFE ID. The empty string
// means yes; otherwise the reason, for a rejectedIdentifier problem. The
// ACME server asks before creating orders and authorizations, so a client
// is refused up front rather than given a certificate its peers reject.
func (c *CA) Permits(typ, value string) string { return permits(c.snap(), typ, value) }

func permits(ch *chain, typ, value string) string {
	for _, cs := range ch.constraints {
		var why string
		switch typ {
		case "ip":
			ip := net.ParseIP(value)
			if ip == nil {
				return fmt.Sprintf("%q is not an IP address", value)
			}
			why = cs.checkIP(ip)
		case "uri":
			u, err := url.Parse(value)
			if err != nil || u.Host == "" {
				return fmt.Sprintf("%q is not an absolute URI", value)
			}
			why = cs.checkURIHost(strings.ToLower(u.Hostname()))
		default:
			why = cs.checkDNS(strings.TrimSuffix(strings.ToLower(value), "."))
		}
		if why != "" {
			return fmt.Sprintf("the CA's name constraints refuse %s: %s (RFC 5280 §4.2.1.10)", value, why)
		}
	}
	return ""
}

func (cs constraintSet) checkDNS(name string) string {
	base, wildcard := strings.CutPrefix(name, "*.")
	for _, e := range cs.excludedDNS {
		// A wildcard also covers names under its base that a verifier
		// comparing the literal "*" label would not see: refuse it when
		// an excluded subtree lies under the base.
		if dnsWithin(name, e) || (wildcard && e != "" && strings.HasSuffix(strings.TrimPrefix(e, "."), "."+base)) {
			if e == "" {
				return fmt.Sprintf("%s permits no DNS names", cs.who)
			}
			return fmt.Sprintf("%s excludes %s", cs.who, e)
		}
	}
	if len(cs.permittedDNS) == 0 {
		return ""
	}
	for _, p := range cs.permittedDNS {
		if dnsWithin(name, p) {
			return ""
		}
	}
	return fmt.Sprintf("%s permits only names under %s", cs.who, strings.Join(cs.permittedDNS, ", "))
}

// dnsWithin reports whether name is in the subtree of constraint
// (RFC 5280 §4.2.1.10: labels added on the left); a leading dot, as
// OpenSSL and Go read it, means strictly below.
func dnsWithin(name, constraint string) bool {
	constraint = strings.ToLower(constraint)
	switch {
	case constraint == "":
		return true
	case strings.HasPrefix(constraint, "."):
		return strings.HasSuffix(name, constraint)
	default:
		return name == constraint || strings.HasSuffix(name, "."+constraint)
	}
}

func (cs constraintSet) checkIP(ip net.IP) string {
	for _, e := range cs.excludedIP {
		if e.Contains(ip) {
			if ones, _ := e.Mask.Size(); ones == 0 {
				return fmt.Sprintf("%s permits no IP addresses", cs.who)
			}
			return fmt.Sprintf("%s excludes %s", cs.who, e)
		}
	}
	if len(cs.permittedIP) == 0 {
		return ""
	}
	for _, p := range cs.permittedIP {
		if p.Contains(ip) {
			return ""
		}
	}
	ranges := make([]string, len(cs.permittedIP))
	for i, p := range cs.permittedIP {
		ranges[i] = p.String()
	}
	return fmt.Sprintf("%s permits only addresses in %s", cs.who, strings.Join(ranges, ", "))
}

// checkURIHost applies URI constraints, which name hosts (RFC 5280
// §4.2.1.10): "corp.example" that host only, ".corp.example" the hosts
// below it. Go's verifier also lets "corp.example" cover hosts below it;
// reading it strictly refuses a little more than a verifier would.
func (cs constraintSet) checkURIHost(host string) string {
	within := func(c string) bool {
		c = strings.ToLower(c)
		if strings.HasPrefix(c, ".") {
			return strings.HasSuffix(host, c)
		}
		return host == c
	}
	for _, e := range cs.excludedURI {
		if within(e) {
			return fmt.Sprintf("%s excludes URIs on %s", cs.who, e)
		}
	}
	if len(cs.permittedURI) == 0 {
		return ""
	}
	for _, p := range cs.permittedURI {
		if within(p) {
			return ""
		}
	}
	return fmt.Sprintf("%s permits only URIs on %s", cs.who, strings.Join(cs.permittedURI, ", "))
}

// checkNames applies Permits to every name of a leaf.
func checkNames(ch *chain, dns []string, ips []net.IP, uri *url.URL) error {
	if uri != nil {
		if why := permits(ch, "uri", uri.String()); why != "" {
			return fmt.Errorf("%s", why)
		}
	}
	for _, n := range dns {
		if why := permits(ch, "dns", n); why != "" {
			return fmt.Errorf("%s", why)
		}
	}
	for _, ip := range ips {
		if why := permits(ch, "ip", ip.String()); why != "" {
			return fmt.Errorf("%s", why)
		}
	}
	return nil
}
