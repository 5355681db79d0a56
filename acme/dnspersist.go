package acme

import (
	"context"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/certmint/certmint/acme/validate"
)

// dns-persist-01 (draft-ietf-acme-dns-persist): the challenge is offered
// for DNS identifiers, wildcards included, when the server has issuer
// domain names (Config.DNSPersistIssuers); its object carries those names
// and the account URL the record must name (draft -01 §3.1, what lego v5
// reads; the names also under draft -02's issuerDomainNames). A record may
// name the account by its URL (-01) or by a hashed URI under the account
// hash prefix the directory advertises (-02 §4.1).

// AccountHashPath is where hashed account URIs live (draft -02 §4.1: the
// accountHashPrefix is the server's base URL and this path). Nothing is
// served there: the URIs only name accounts.
const AccountHashPath = "/acme/account-hash/"

// accountHashPrefix is the accountHashPrefix of the directory, when the
// server offers dns-persist-01.
func (s *Server) accountHashPrefix(c echo.Context) string {
	if len(s.cfg.DNSPersistIssuers) == 0 {
		return ""
	}
	return s.baseURL(c) + AccountHashPath
}

// offeredTypes are the challenge types an identifier gets: the table's
// (validate.Offered), less dns-persist-01 when the server has no issuer
// domain names to put in its records.
func (s *Server) offeredTypes(id normalizedIdentifier) []string {
	types := validate.Offered(id.Type, id.Wildcard)
	if len(s.cfg.DNSPersistIssuers) > 0 {
		return types
	}
	return slices.DeleteFunc(types, func(t string) bool { return t == validate.TypeDNSPersist01 })
}

// persistChallengeJSON fills the dns-persist-01 fields of a challenge
// object; the challenge needs no token (§3.1).
func (s *Server) persistChallengeJSON(c echo.Context, out *challengeJSON, accountID string) {
	if out.Type != validate.TypeDNSPersist01 {
		return
	}
	out.Token = ""
	out.IssuerDomainNames = s.cfg.DNSPersistIssuers
	out.IssuerDomainNamesV2 = s.cfg.DNSPersistIssuers
	out.AccountURI = s.accountURL(c, accountID)
}

// validateChallenge runs the validator; for dns-persist-01 it also keeps the
// record that matched, before the result is recorded, so that the console
// can show it and persistUntil bounds the authorization (§4.1 item 5).
func (s *Server) validateChallenge(ctx context.Context, ch *Challenge, a *Authorization, req validate.Request) error {
	if ch.Type != validate.TypeDNSPersist01 {
		return s.validator.Validate(ctx, req)
	}
	req.IssuerDomainNames = s.cfg.DNSPersistIssuers
	req.Wildcard = a.Wildcard
	// The account URL is the server's base URL and /acme/account/ID; the
	// key authorization is token "." thumbprint (RFC 8555 §8.1).
	if base, ok := strings.CutSuffix(req.AccountURL, "/acme/account/"+a.AccountID); ok {
		req.AccountHashPrefix = base + AccountHashPath
	}
	_, req.KeyThumbprint, _ = strings.Cut(req.KeyAuth, ".")
	m, err := s.validator.ValidatePersist(ctx, req)
	if err != nil {
		return err
	}
	s.log.Info("dns-persist-01 record matched", "challenge", ch.ID, "identifier", a.Value, "name", m.Name)
	return s.store.RecordDNSPersistMatch(ctx, DNSPersistMatch{
		ChallengeID: ch.ID, AuthzID: a.ID, Name: m.Name, Record: m.Record, PersistUntil: m.PersistUntil,
		CreatedAt: s.now(),
	})
}
