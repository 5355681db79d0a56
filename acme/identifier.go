package acme

import (
	"net/netip"
	"strings"
)

// normalizedIdentifier is an order identifier as the server works with it:
// Value lowercase and canonical, without the "*." of a wildcard.
type normalizedIdentifier struct {
	Type     string
	Value    string
	Wildcard bool
}

// name is the identifier as it appears in a certificate's SANs.
func (n normalizedIdentifier) name() string {
	if n.Wildcard {
		return "*." + n.Value
	}
	return n.Value
}

// ParseIdentifier checks an identifier's syntax (RFC 8555 §7.1.4 dns,
// RFC 8738 ip) and normalizes it. The returned problem names the
// identifier, so it can be a subproblem.
func ParseIdentifier(id Identifier) (normalizedIdentifier, *Problem) {
	bad := func(p *Problem) (normalizedIdentifier, *Problem) {
		p.Identifier = &Identifier{Type: id.Type, Value: id.Value}
		return normalizedIdentifier{}, p
	}
	switch id.Type {
	case "dns":
		// Lowercase ASCII only: strings.ToLower would fold some non-ASCII
		// runes (U+212A KELVIN SIGN) into ASCII letters, so the name
		// authorized would differ from the one ordered (RFC 8555 §7.1.4
		// wants A-labels).
		for i := 0; i < len(id.Value); i++ {
			if id.Value[i] >= 0x80 {
				return bad(RejectedIdentifier("%q is not a valid DNS name: it is not ASCII; use the A-label form of an IDN", id.Value))
			}
		}
		v := strings.ToLower(id.Value)
		wildcard := false
		if rest, ok := strings.CutPrefix(v, "*."); ok {
			v, wildcard = rest, true
		}
		if err := checkDNSName(v); err != "" {
			return bad(RejectedIdentifier("%q is not a valid DNS name: %s", id.Value, err))
		}
		return normalizedIdentifier{Type: "dns", Value: v, Wildcard: wildcard}, nil
	case "ip":
		addr, err := netip.ParseAddr(id.Value)
		if err != nil || addr.Zone() != "" {
			return bad(RejectedIdentifier("%q is not an IP address (RFC 8738)", id.Value))
		}
		if addr.Is4In6() {
			addr = addr.Unmap()
		}
		return normalizedIdentifier{Type: "ip", Value: addr.String()}, nil
	default:
		return bad(UnsupportedIdentifier("identifier type %q is not supported; use dns or ip", id.Type))
	}
}

// checkDNSName returns why name is not a valid host name, or "".
func checkDNSName(name string) string {
	if name == "" {
		return "it is empty"
	}
	if len(name) > 253 {
		return "it is longer than 253 characters"
	}
	if strings.HasSuffix(name, ".") {
		return "it ends with a dot"
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return "it is an IP address; use an ip identifier"
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" {
			return "it has an empty label"
		}
		if len(label) > 63 {
			return "a label is longer than 63 characters"
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return "a label starts or ends with a hyphen"
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				if c == '*' {
					return "a wildcard is only allowed as the whole leftmost label"
				}
				return "it has a character other than letters, digits, hyphens and dots"
			}
		}
	}
	return ""
}
