package acme

import (
	"context"

	"github.com/labstack/echo/v4"

	"github.com/certmint/certmint/acme/validate"
	"github.com/certmint/certmint/storage"
)

// dns-persist-01 (draft-ietf-acme-dns-persist-01): the challenge is offered
// for DNS identifiers, wildcards included, when the server has issuer
// domain names (Config.DNSPersistIssuers); its object carries those names
// and the account URL the record must name (§3.1).

// withDNSPersist adds dns-persist-01 to the challenge types of a DNS
// identifier when the server offers it.
func (s *Server) withDNSPersist(identType string, types []string) []string {
	if len(s.cfg.DNSPersistIssuers) == 0 || identType != validate.IdentDNS {
		return types
	}
	return append(types, validate.TypeDNSPersist01)
}

// persistChallengeJSON fills the dns-persist-01 fields of a challenge
// object; the challenge needs no token (§3.1).
func (s *Server) persistChallengeJSON(c echo.Context, out *challengeJSON, accountID string) {
	if out.Type != validate.TypeDNSPersist01 {
		return
	}
	out.Token = ""
	out.IssuerDomainNames = s.cfg.DNSPersistIssuers
	out.AccountURI = s.accountURL(c, accountID)
}

// validateChallenge runs the validator; for dns-persist-01 it also keeps the
// record that matched, before the result is recorded, so that the console
// can show it and persistUntil bounds the authorization (§4.1 item 5).
func (s *Server) validateChallenge(ctx context.Context, ch *storage.Challenge, a *storage.Authorization, req validate.Request) error {
	if ch.Type != validate.TypeDNSPersist01 {
		return s.validator.Validate(ctx, req)
	}
	req.IssuerDomainNames = s.cfg.DNSPersistIssuers
	req.Wildcard = a.Wildcard
	m, err := s.validator.ValidatePersist(ctx, req)
	if err != nil {
		return err
	}
	s.log.Info("dns-persist-01 record matched", "challenge", ch.ID, "identifier", a.Value, "name", m.Name)
	return s.store.RecordDNSPersistMatch(ctx, storage.DNSPersistMatch{
		ChallengeID: ch.ID, AuthzID: a.ID, Name: m.Name, Record: m.Record, PersistUntil: m.PersistUntil,
		CreatedAt: s.now(),
	})
}
