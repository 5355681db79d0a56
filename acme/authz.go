package acme

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
)

// authz serves POST-as-GET on an authorization and its deactivation
// (RFC 8555 §7.5, §7.5.2).
func (s *Server) authz(c echo.Context, r *request) error {
	ctx := c.Request().Context()
	a, err := s.store.GetAuthorization(ctx, c.Param("id"))
	if err != nil {
		return storeError("authorization", err)
	}
	if a.AccountID != r.account.ID {
		return Unauthorized("the authorization belongs to another account")
	}
	if !r.postAsGet() {
		var upd struct {
			Status string `json:"status"`
		}
		if err := r.decode(&upd); err != nil {
			return err
		}
		if upd.Status != StatusDeactivated {
			return Malformed("status may only be set to %q", StatusDeactivated)
		}
		if err := s.store.DeactivateAuthorization(ctx, a.ID); err != nil {
			if errors.Is(err, ErrConflict) {
				return Malformed("the authorization is %s and cannot be deactivated", a.Status)
			}
			return storeError("authorization", err)
		}
		a.Status = StatusDeactivated
	}
	return writeJSON(c, http.StatusOK, s.authzJSON(c, a))
}

func (s *Server) authzJSON(c echo.Context, a *Authorization) authzJSON {
	status := a.Status
	if status == StatusPending && s.now().After(a.Expires) {
		status = StatusExpired
	}
	out := authzJSON{
		Identifier: Identifier{Type: a.Type, Value: a.Value},
		Status:     status,
		Expires:    timestamp(a.Expires),
		Wildcard:   a.Wildcard,
		Challenges: make([]challengeJSON, 0, len(a.Challenges)),
	}
	for i := range a.Challenges {
		ch := &a.Challenges[i]
		// Once valid, only the challenge that succeeded is listed
		// (RFC 8555 §7.1.4 lets the server prune the others).
		if status == StatusValid && ch.Status != StatusValid {
			continue
		}
		out.Challenges = append(out.Challenges, s.challengeJSON(c, ch, a.AccountID))
	}
	if status == StatusPending {
		retryAfter(c, 1)
	}
	return out
}

func (s *Server) challengeJSON(c echo.Context, ch *Challenge, accountID string) challengeJSON {
	out := challengeJSON{
		Type:   ch.Type,
		URL:    s.challengeURL(c, ch.ID),
		Status: ch.Status,
		Token:  ch.Token,
	}
	if ch.Validated != nil {
		out.Validated = timestamp(*ch.Validated)
	}
	out.Error = ch.Error
	s.persistChallengeJSON(c, &out, accountID)
	return out
}

// challenge serves a challenge: POST-as-GET returns it, a POST with a JSON
// object asks the server to validate (RFC 8555 §7.5.1). Validation runs in
// the background; the response waits for it up to validationWait and
// otherwise says processing with Retry-After. Asking again for a
// challenge that is already under way just returns it.
func (s *Server) challenge(c echo.Context, r *request) error {
	ctx := c.Request().Context()
	ch, a, err := s.store.GetChallenge(ctx, c.Param("id"))
	if err != nil {
		return storeError("challenge", err)
	}
	if a.AccountID != r.account.ID {
		return Unauthorized("the challenge belongs to another account")
	}
	c.Response().Header().Add("Link", link(s.authzURL(c, a.ID), "up"))
	if !r.postAsGet() {
		var empty map[string]any
		if err := r.decode(&empty); err != nil {
			return err
		}
		if ch.Status == StatusPending {
			if a.Status != StatusPending || s.now().After(a.Expires) {
				return Malformed("the authorization is %s; its challenges can no longer be answered", a.Status)
			}
			if err := s.checkFailures(c, r.account.ID); err != nil {
				return err
			}
			done, err := s.startValidation(ch, a, r.account, s.accountURL(c, r.account.ID), c.RealIP())
			if err != nil {
				return err
			}
			if ch, err = s.awaitValidation(ctx, ch, done); err != nil {
				return err
			}
		}
	}
	if ch.Status == StatusProcessing {
		retryAfter(c, 1)
	}
	return writeJSON(c, http.StatusOK, s.challengeJSON(c, ch, a.AccountID))
}

// newAuthz implements pre-authorization (RFC 8555 §7.4.1): the account
// proves control of an identifier before ordering. A later order for it is
// ready at once. Wildcards cannot be pre-authorized (the RFC's note).
func (s *Server) newAuthz(c echo.Context, r *request) error {
	var req struct {
		Identifier Identifier `json:"identifier"`
	}
	if err := r.decode(&req); err != nil {
		return err
	}
	id, p := ParseIdentifier(req.Identifier)
	if p != nil {
		return p
	}
	if id.Wildcard {
		return RejectedIdentifier("a wildcard cannot be pre-authorized (RFC 8555 §7.4.1); order it and use dns-01")
	}
	ctx := c.Request().Context()
	if err := s.checkPolicy(ctx, r.account, []normalizedIdentifier{id}); err != nil {
		return err
	}
	if err := s.allowOrder(c, r.account.ID); err != nil {
		return err
	}
	a := s.newAuthorization(r.account.ID, id, s.now().UTC())
	a.PreAuth = true
	if err := s.store.CreateAuthorization(ctx, &a); err != nil {
		return storeError("authorization", err)
	}
	c.Response().Header().Set("Location", s.authzURL(c, a.ID))
	out := s.authzJSON(c, &a)
	return writeJSON(c, http.StatusCreated, out)
}
