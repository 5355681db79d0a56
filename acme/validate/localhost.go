package validate

import (
	"net/netip"
	"strings"
)

// Names under "localhost" resolve to loopback without asking anyone
// (RFC 6761 §6.3: resolvers "SHOULD always return the IP loopback address
// for address queries and negative responses for all other query types"
// and "SHOULD NOT send queries for localhost names" to DNS). Browsers and
// systemd-resolved do the same, so `certbot -d app.localhost` on the
// server's own machine validates with nothing set up, where the network
// policy lets validation reach loopback (it does by default; see
// Config.Allowed and Config.Denied). Where it does not, the dial is refused
// with the usual "not an allowed validation target" problem.
//
// The rule comes before the hosts tables and DNS: a localhost name is
// loopback whatever a table or a DNS server says, as RFC 6761 asks.

var (
	loopback4 = netip.MustParseAddr("127.0.0.1")
	loopback6 = netip.IPv6Loopback()
)

// isLocalhost reports whether name (any case, with or without the final
// dot) is "localhost" or a name under it.
func isLocalhost(name string) bool {
	n := strings.TrimSuffix(strings.ToLower(name), ".")
	return n == "localhost" || strings.HasSuffix(n, ".localhost")
}
