package acme

import (
	"context"
	"net/netip"

	"github.com/certmint/certmint/acme/policy"
)

// checkPolicy applies the server's identifier policy, for an account
// bound with an EAB key that has an allow list the key's own, and the
// name constraints of the CA's active issuer. Every
// refused identifier becomes one subproblem of a rejectedIdentifier
// problem (RFC 8555 §6.7.1).
func (s *Server) checkPolicy(ctx context.Context, acct *Account, idents []normalizedIdentifier) error {
	var keyRules policy.Rules
	if acct.EABKeyID != "" {
		key, err := s.store.GetEABKey(ctx, acct.EABKeyID)
		if err != nil {
			return storeError("external account key", err)
		}
		if keyRules, err = policy.ParseEntries(key.Allow); err != nil {
			return ServerInternal(err)
		}
	}
	var subs []*Problem
	for _, id := range idents {
		why := ""
		switch {
		case id.Wildcard && s.cfg.NoWildcards:
			why = "wildcard certificates are disabled on this server"
		case id.Type == "ip":
			addr := netip.MustParseAddr(id.Value)
			if why = s.cfg.Policy.CheckIP(addr); why == "" {
				why = keyRules.CheckIP(addr)
			}
		default:
			if why = s.cfg.Policy.CheckDNS(id.name()); why == "" {
				why = keyRules.CheckDNS(id.name())
			}
		}
		if why == "" { // the issuer's name constraints, RFC 5280 §4.2.1.10
			why = s.ca.Permits(id.Type, id.name())
		}
		if why != "" {
			p := RejectedIdentifier("%s", why)
			p.Identifier = &Identifier{Type: id.Type, Value: id.name()}
			subs = append(subs, p)
		}
	}
	if len(subs) == 0 {
		return nil
	}
	p := RejectedIdentifier("the CA's policy refuses %d of the identifiers; see subproblems", len(subs))
	if len(subs) == 1 {
		p.Detail = "the CA's policy refuses " + subs[0].Identifier.Value + ": " + subs[0].Detail
	}
	p.Subproblems = subs
	return p
}
