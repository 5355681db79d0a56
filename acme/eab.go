package acme

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/certmint/certmint/acme/eab"

	"github.com/labstack/echo/v4"

	"github.com/certmint/certmint/acme/jws"
)

// checkEAB verifies newAccount's externalAccountBinding (RFC 8555 §7.3.4):
// an HS256 JWS over the account's JWK, keyed by a MAC key the operator
// issued, with kid naming that key and url equal to the newAccount URL.
// It returns the key, or nil when there is no binding and none is needed.
func (s *Server) checkEAB(c echo.Context, r *request, binding json.RawMessage) (*eab.Key, error) {
	if len(binding) == 0 || string(binding) == "null" {
		if s.cfg.EABRequired {
			return nil, ExternalAccountRequired("this server requires an external account binding; ask the operator for a key (certmint admin eab create)")
		}
		return nil, nil
	}
	inner, err := jws.Parse(binding, jws.ParseOptions{AllowHMAC: true, ForbidNonce: true})
	if err != nil {
		return nil, Malformed("externalAccountBinding: %v", err)
	}
	if !strings.HasPrefix(inner.Header.Alg, "HS") || inner.Header.KID == "" {
		return nil, Malformed("externalAccountBinding must be MACed (HS256) with the key ID as kid")
	}
	if inner.Header.URL != r.url {
		return nil, Malformed("externalAccountBinding url must be the newAccount URL")
	}
	outer, err := jws.ParseJWK(inner.Payload)
	if err != nil || outer.Thumbprint() != r.msg.Header.JWK.Thumbprint() {
		return nil, Malformed("externalAccountBinding payload must be the account's JWK")
	}
	key, err := s.store.GetEABKey(c.Request().Context(), inner.Header.KID)
	if errors.Is(err, ErrNotFound) {
		return nil, Unauthorized("external account binding key %q is not known", inner.Header.KID)
	}
	if err != nil {
		return nil, storeError("external account key", err)
	}
	if err := inner.VerifyHMAC(key.HMACKey); err != nil {
		return nil, Unauthorized("the external account binding MAC does not verify")
	}
	if key.Revoked {
		return nil, Unauthorized("external account binding key %q was revoked", key.ID)
	}
	if !key.Reusable && key.UsedBy != "" {
		return nil, Unauthorized("external account binding key %q was already used", key.ID)
	}
	return key, nil
}

// bindEAB marks the key used by the new account; a single-use key that
// another request bound meanwhile is refused.
func (s *Server) bindEAB(ctx context.Context, key *eab.Key, accountID string) error {
	err := s.store.BindEABKey(ctx, key.ID, accountID, s.now())
	if errors.Is(err, ErrConflict) {
		return Unauthorized("external account binding key %q was already used or revoked", key.ID)
	}
	if err != nil {
		return storeError("external account key", err)
	}
	return nil
}
