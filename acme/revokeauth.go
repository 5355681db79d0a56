package acme

import (
	"context"
	"errors"
	"net/netip"
)

// checkAuthorizedFor reports, as an unauthorized problem, whether the
// account lacks a valid authorization for any of the certificate's names.
// RFC 8555 §7.6 makes the server accept revocation from "an account that
// holds authorizations for all of the identifiers in the certificate", not
// only from the account that ordered it. A wildcard name needs a wildcard
// authorization, as issuing it did.
func (s *Server) checkAuthorizedFor(ctx context.Context, accountID string, names []string) error {
	now := s.now().UTC()
	for _, name := range names {
		typ := "dns"
		if _, err := netip.ParseAddr(name); err == nil {
			typ = "ip"
		}
		id, p := ParseIdentifier(Identifier{Type: typ, Value: name})
		if p != nil {
			return Unauthorized("the certificate belongs to another account")
		}
		_, err := s.store.FindReusableAuthorization(ctx, accountID, id.Type, id.Value, id.Wildcard, now)
		if errors.Is(err, ErrNotFound) {
			return Unauthorized("the certificate belongs to another account, and this account holds no valid authorization for %s", name)
		}
		if err != nil {
			return storeError("authorization", err)
		}
	}
	return nil
}
