package acme

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/mail"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/certmint/certmint/acme/jws"
	"github.com/certmint/certmint/acme/ratelimit"
)

type newAccountRequest struct {
	Contact                []string        `json:"contact"`
	TermsOfServiceAgreed   bool            `json:"termsOfServiceAgreed"`
	OnlyReturnExisting     bool            `json:"onlyReturnExisting"`
	ExternalAccountBinding json.RawMessage `json:"externalAccountBinding"`
}

// newAccount implements RFC 8555 §7.3: 201 with Location for a new key,
// 200 with Location for a key that has an account already.
func (s *Server) newAccount(c echo.Context, r *request) error {
	var req newAccountRequest
	if err := r.decode(&req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	jwk := r.msg.Header.JWK
	thumb := jwk.Thumbprint()
	existing, err := s.store.GetAccountByThumbprint(ctx, thumb)
	switch {
	case err == nil:
		// RFC 8555 §7.3.6: a deactivated account's key is refused.
		if existing.Status != StatusValid {
			return Unauthorized("the account of this key is %s", existing.Status)
		}
		c.Response().Header().Set("Location", s.accountURL(c, existing.ID))
		return writeJSON(c, http.StatusOK, s.accountJSON(c, existing))
	case !errors.Is(err, ErrNotFound):
		return storeError("account", err)
	}
	if req.OnlyReturnExisting {
		return AccountDoesNotExist("no account exists with this key")
	}
	contact, err := checkContacts(req.Contact)
	if err != nil {
		return err
	}
	if err := s.allow(ctx, s.cfg.RateLimits.NewAccountPerIP, ratelimit.IPKey(c.RealIP()), "new accounts from this address"); err != nil {
		return err
	}
	if s.cfg.TermsOfService != "" && !req.TermsOfServiceAgreed {
		// RFC 8555 §7.3.3: userActionRequired links the terms and names
		// them as the instance a human should visit.
		c.Response().Header().Add("Link", link(s.cfg.TermsOfService, "terms-of-service"))
		p := UserActionRequired("the terms of service at %s must be agreed to (termsOfServiceAgreed: true)", s.cfg.TermsOfService)
		p.Instance = s.cfg.TermsOfService
		return p
	}
	eabKey, err := s.checkEAB(c, r, req.ExternalAccountBinding)
	if err != nil {
		return err
	}
	keyJSON, err := jwk.MarshalJSON()
	if err != nil {
		return ServerInternal(err)
	}
	acct := &Account{
		ID:            NewID(),
		KeyThumbprint: thumb,
		KeyJWK:        string(keyJSON),
		Status:        StatusValid,
		Contact:       contact,
		TOSAgreed:     req.TermsOfServiceAgreed,
		CreatedAt:     s.now().UTC(),
	}
	if eabKey != nil {
		// The key's workload becomes the account's, for good (identity.go).
		acct.EABKeyID, acct.Workload = eabKey.ID, eabKey.Workload
		if err := s.bindEAB(ctx, eabKey, acct.ID); err != nil {
			return err
		}
	}
	if err := s.store.CreateAccount(ctx, acct); err != nil {
		if eabKey != nil {
			_ = s.store.UnbindEABKey(ctx, eabKey.ID, acct.ID)
		}
		if errors.Is(err, ErrConflict) {
			// Another request registered the same key meanwhile.
			if existing, err := s.store.GetAccountByThumbprint(ctx, thumb); err == nil {
				c.Response().Header().Set("Location", s.accountURL(c, existing.ID))
				return writeJSON(c, http.StatusOK, s.accountJSON(c, existing))
			}
		}
		return storeError("account", err)
	}
	s.log.Info("account created", "request_id", requestID(c), "account", acct.ID)
	c.Response().Header().Set("Location", s.accountURL(c, acct.ID))
	return writeJSON(c, http.StatusCreated, s.accountJSON(c, acct))
}

// checkContacts accepts mailto: URIs with one plain address each (RFC 8555
// §7.3, as Let's Encrypt does) and returns them normalized (nil for none).
// Spaces and tabs around the address are trimmed: acme.sh has long sent
// "mailto: ops@example.test", and Boulder and Pebble accept it. What is
// left must still be exactly one address, stored as "mailto:addr".
func checkContacts(contacts []string) ([]string, error) {
	if len(contacts) == 0 {
		return nil, nil
	}
	if len(contacts) > 10 {
		return nil, InvalidContact("at most 10 contacts are accepted")
	}
	out := make([]string, len(contacts))
	for i, ct := range contacts {
		addr, ok := strings.CutPrefix(ct, "mailto:")
		if !ok {
			return nil, UnsupportedContact("contact %q is not a mailto: URI; only mailto: is supported", ct)
		}
		addr = strings.Trim(addr, " \t")
		if strings.ContainsAny(addr, "?,") {
			return nil, InvalidContact("contact %q must be a single address without hfields", ct)
		}
		parsed, err := mail.ParseAddress(addr)
		if err != nil || parsed.Address != addr || parsed.Name != "" {
			return nil, InvalidContact("contact %q is not a valid email address", ct)
		}
		out[i] = "mailto:" + addr
	}
	return out, nil
}

func (s *Server) accountJSON(c echo.Context, a *Account) accountJSON {
	out := accountJSON{
		Status:               a.Status,
		TermsOfServiceAgreed: a.TOSAgreed,
		Orders:               s.accountURL(c, a.ID) + "/orders",
		Contact:              a.Contact,
	}
	return out
}

type accountUpdate struct {
	Status  string    `json:"status"`
	Contact *[]string `json:"contact"`
}

// account serves POST-as-GET, contact updates and deactivation of the
// signer's own account (RFC 8555 §7.3.2, §7.3.6).
func (s *Server) account(c echo.Context, r *request) error {
	if c.Param("id") != r.account.ID {
		return Unauthorized("the request is signed by another account")
	}
	c.Response().Header().Set("Location", s.accountURL(c, r.account.ID))
	if r.postAsGet() {
		return writeJSON(c, http.StatusOK, s.accountJSON(c, r.account))
	}
	var upd accountUpdate
	if err := r.decode(&upd); err != nil {
		return err
	}
	ctx := c.Request().Context()
	acct := r.account
	switch upd.Status {
	case "":
	case StatusDeactivated:
		if err := s.store.DeactivateAccount(ctx, acct.ID); err != nil {
			return storeError("account", err)
		}
		s.log.Info("account deactivated", "request_id", requestID(c), "account", acct.ID)
		acct.Status = StatusDeactivated
		return writeJSON(c, http.StatusOK, s.accountJSON(c, acct))
	default:
		return Malformed("status may only be set to %q", StatusDeactivated)
	}
	if upd.Contact != nil {
		contact, err := checkContacts(*upd.Contact)
		if err != nil {
			return err
		}
		if err := s.store.UpdateAccountContact(ctx, acct.ID, contact); err != nil {
			return storeError("account", err)
		}
		acct.Contact = contact
	}
	return writeJSON(c, http.StatusOK, s.accountJSON(c, acct))
}

type keyChangeRequest struct {
	Account string          `json:"account"`
	OldKey  json.RawMessage `json:"oldKey"`
}

// keyChange implements account key rollover, RFC 8555 §7.3.5: the outer
// JWS is signed by the old key, the inner one by the new key.
func (s *Server) keyChange(c echo.Context, r *request) error {
	inner, err := jws.Parse(r.msg.Payload, jws.ParseOptions{})
	if err != nil {
		return jwsProblem(err)
	}
	switch {
	case inner.Header.JWK == nil:
		return Malformed("the inner JWS must carry the new key as jwk")
	case inner.Header.Nonce != "":
		return Malformed("the inner JWS must not carry a nonce")
	case inner.Header.URL != r.msg.Header.URL:
		return Malformed("the inner JWS url must equal the outer url")
	}
	if err := jws.CheckKey(inner.Header.JWK.Key); err != nil {
		return jwsProblem(err)
	}
	if err := inner.Verify(inner.Header.JWK.Key); err != nil {
		return jwsProblem(err)
	}
	var req keyChangeRequest
	if err := json.Unmarshal(inner.Payload, &req); err != nil {
		return Malformed("the inner payload is not a keyChange object: %v", jsonDetail(err))
	}
	if req.Account != r.msg.Header.KID {
		return Unauthorized("the inner payload's account does not match the outer kid")
	}
	old, err := jws.ParseJWK(req.OldKey)
	if err != nil || old.Thumbprint() != r.account.KeyThumbprint {
		return Unauthorized("oldKey is not the account's current key")
	}
	newThumb := inner.Header.JWK.Thumbprint()
	ctx := c.Request().Context()
	if other, err := s.store.GetAccountByThumbprint(ctx, newThumb); err == nil {
		p := problem(http.StatusConflict, "malformed", "the new key already belongs to an account")
		p.Location = s.accountURL(c, other.ID)
		return p
	}
	newJWK, err := inner.Header.JWK.MarshalJSON()
	if err != nil {
		return ServerInternal(err)
	}
	if err := s.store.ChangeAccountKey(ctx, r.account.ID, r.account.KeyThumbprint, newThumb, string(newJWK)); err != nil {
		if errors.Is(err, ErrConflict) {
			p := problem(http.StatusConflict, "malformed", "the new key already belongs to an account, or the key changed meanwhile")
			if other, err := s.store.GetAccountByThumbprint(ctx, newThumb); err == nil {
				p.Location = s.accountURL(c, other.ID)
			}
			return p
		}
		return storeError("account", err)
	}
	s.log.Info("account key changed", "request_id", requestID(c), "account", r.account.ID)
	r.account.KeyThumbprint, r.account.KeyJWK = newThumb, string(newJWK)
	c.Response().Header().Set("Location", s.accountURL(c, r.account.ID))
	return writeJSON(c, http.StatusOK, s.accountJSON(c, r.account))
}

const ordersPageSize = 100

// accountOrders lists the account's orders (RFC 8555 §7.1.2.1), a page at
// a time with Link rel="next".
func (s *Server) accountOrders(c echo.Context, r *request) error {
	if c.Param("id") != r.account.ID {
		return Unauthorized("the request is signed by another account")
	}
	after := c.QueryParam("cursor")
	ids, err := s.store.ListOrderIDs(c.Request().Context(), r.account.ID, after, ordersPageSize+1)
	if err != nil {
		return storeError("orders", err)
	}
	if len(ids) > ordersPageSize {
		ids = ids[:ordersPageSize]
		next := s.accountURL(c, r.account.ID) + "/orders?cursor=" + ids[len(ids)-1]
		c.Response().Header().Add("Link", link(next, "next"))
	}
	urls := make([]string, len(ids))
	for i, id := range ids {
		urls[i] = s.orderURL(c, id)
	}
	return writeJSON(c, http.StatusOK, map[string][]string{"orders": urls})
}
