package validate

// ChallengeType is one row of the challenge-type table: which identifiers
// the challenge can prove control of. The table is the one place that
// decides it: order creation offers exactly the types that Offered lists,
// and Validate refuses a request the table does not allow.
type ChallengeType struct {
	Name string
	// IP: it can prove control of an IP address (RFC 8738 §7 allows only
	// http-01 and tls-alpn-01; a DNS record proves nothing about an IP).
	IP bool
	// Wildcard: it can prove control of a wildcard name. Only the DNS
	// challenges can (RFC 8555 §7.1.3, §8.4).
	Wildcard bool
	// NonWildcard: it is offered for a plain DNS name.
	NonWildcard bool
}

// ChallengeTypes lists every challenge type certmint validates, in the
// order offered to clients.
var ChallengeTypes = []ChallengeType{
	{Name: TypeHTTP01, IP: true, NonWildcard: true},
	{Name: TypeDNS01, Wildcard: true, NonWildcard: true},
	{Name: TypeTLSALPN01, IP: true, NonWildcard: true},
	{Name: TypeDNSAccount01, Wildcard: true, NonWildcard: true},
	// Offered only when the server has issuer domain names
	// (--dns-persist-issuer); acme drops it otherwise.
	{Name: TypeDNSPersist01, Wildcard: true, NonWildcard: true},
}

// allows reports whether t can prove an identifier of identType (wildcard
// or not).
func (t ChallengeType) allows(identType string, wildcard bool) bool {
	switch {
	case identType == IdentIP:
		return t.IP && !wildcard
	case identType != IdentDNS:
		return false
	case wildcard:
		return t.Wildcard
	}
	return t.NonWildcard
}

// Offered returns the challenge types to offer for an identifier, in table
// order.
func Offered(identType string, wildcard bool) []string {
	var out []string
	for _, t := range ChallengeTypes {
		if t.allows(identType, wildcard) {
			out = append(out, t.Name)
		}
	}
	return out
}

// Allowed reports whether challenge type name may prove an identifier of
// identType; unknown types are not allowed.
func Allowed(name, identType string, wildcard bool) bool {
	for _, t := range ChallengeTypes {
		if t.Name == name {
			return t.allows(identType, wildcard)
		}
	}
	return false
}
