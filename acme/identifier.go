package acme

import (
	"net/netip"
	"strings"

	"golang.org/x/net/idna"
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
// identifier, so it can be a subproblem. It is the one identifier check:
// newOrder, newAuthz and revocation by authorization all call it, so a
// name refused here can never be ordered, pre-authorized or issued.
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
				return bad(RejectedIdentifier("%q is not a valid DNS name: %s", id.Value, uLabelAdvice(id.Value)))
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

// checkDNSName returns why name (lowercase ASCII, without a wildcard's
// "*.") is not a host name a CA may certify, or "". The syntax checks
// come first for their plain messages; IDNA2008's registration rules
// (RFC 5891 §4, via golang.org/x/net/idna) then judge what syntax alone
// cannot: whether an "xn--" label is a valid A-label, and the hyphens
// reserved in the third and fourth positions.
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
	labels := strings.Split(name, ".")
	for _, label := range labels {
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
	// An all-digit top-level label makes the name read as an IP address
	// to many parsers (0x7f.0.0.1 is 127.0.0.1 to inet_aton); no
	// top-level domain is numeric, and Boulder refuses them too.
	if allDigits(labels[len(labels)-1]) {
		return "its last label is all digits, so it would read as an IP address"
	}
	if ascii, err := idna.Registration.ToASCII(name); err != nil || ascii != name {
		for _, label := range labels {
			if ascii, err := idna.Registration.ToASCII(label); err == nil && ascii == label {
				continue
			}
			if strings.HasPrefix(label, "xn--") {
				return "label " + label + " is not a valid A-label (IDNA2008, RFC 5890 §2.3.2.1)"
			}
			return "label " + label + " has hyphens in the third and fourth positions, which are reserved for A-labels (RFC 5891 §4.2.3.1)"
		}
		return "IDNA2008 does not allow its labels together (RFC 5893 bidi rule)"
	}
	return ""
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// uLabelAdvice says why a non-ASCII DNS identifier is refused. RFC 8555
// §7.1.4 wants IDNs as A-labels; when the value is a valid IDN in U-label
// form, the advice names its A-label, so the client knows what to send.
// The A-label is computed without Unicode mapping (no case folding), so
// a look-alike such as U+212A KELVIN SIGN is never turned into a name the
// client did not write. ASCII letters are lowercased first, as
// ParseIdentifier does for ASCII names: without that, "Bücher.test" was
// told it is no valid internationalized domain name at all.
func uLabelAdvice(value string) string {
	prefix, rest := "", asciiLower(value)
	if r, ok := strings.CutPrefix(rest, "*."); ok {
		prefix, rest = "*.", r
	}
	if ascii, err := idna.Registration.ToASCII(rest); err == nil && checkDNSName(ascii) == "" {
		return "identifiers are A-labels (RFC 8555 §7.1.4); send " + prefix + ascii
	}
	return "it is not ASCII, and not a valid internationalized domain name either"
}

// asciiLower lowercases A-Z only; every other rune stays as it is.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
}
