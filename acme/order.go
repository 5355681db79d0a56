package acme

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

type newOrderRequest struct {
	Identifiers []Identifier `json:"identifiers"`
	NotBefore   string       `json:"notBefore"`
	NotAfter    string       `json:"notAfter"`
	Profile     string       `json:"profile"`
	Replaces    string       `json:"replaces"`
}

// newOrder implements RFC 8555 §7.4: one authorization per identifier,
// answered with 201 and the order's Location.
func (s *Server) newOrder(c echo.Context, r *request) error {
	var req newOrderRequest
	if err := r.decode(&req); err != nil {
		return err
	}
	idents, err := s.checkIdentifiers(req.Identifiers)
	if err != nil {
		return err
	}
	if err := s.checkPolicy(c.Request().Context(), r.account, idents); err != nil {
		return err
	}
	if _, err := s.workloadID(c.Request().Context(), r.account); err != nil {
		return err
	}
	profile := req.Profile
	if profile == "" {
		profile = s.cfg.DefaultProfile
	}
	prof, ok := s.cfg.Profiles[profile]
	if !ok {
		return InvalidProfile("profile %q is not offered; see meta.profiles in the directory", req.Profile)
	}
	now := s.now().UTC()
	maxValidity := prof.Validity
	if s.cfg.MaxValidity > 0 && s.cfg.MaxValidity < maxValidity {
		maxValidity = s.cfg.MaxValidity
	}
	notBefore, notAfter, perr := orderValidity(req.NotBefore, req.NotAfter, now, maxValidity)
	if perr != nil {
		return perr
	}
	var replaced *Certificate
	if req.Replaces != "" {
		if replaced, err = s.checkReplaces(c, req.Replaces, r.account.ID, idents); err != nil {
			return err
		}
	}
	// The rate limit comes after every check of the request itself, so
	// that a refused order uses up no token (bad input changes nothing).
	if err := s.allowOrder(c, r.account.ID); err != nil {
		return err
	}
	order := &Order{
		ID:          NewID(),
		AccountID:   r.account.ID,
		Status:      StatusPending,
		Expires:     now.Add(s.cfg.OrderLifetime),
		Identifiers: req.Identifiers,
		Names:       names(idents),
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		Profile:     profile,
		Replaces:    req.Replaces,
		CreatedAt:   now,
	}
	ctx := c.Request().Context()
	var fresh []Authorization
	allValid := true
	for _, id := range idents {
		// A valid pre-authorization (RFC 8555 §7.4.1) is always used;
		// other valid authorizations only when reuse is enabled.
		// It must stay valid for at least an hour, time enough to finalize.
		reuse, err := s.store.FindReusableAuthorization(ctx, r.account.ID, id.Type, id.Value, id.Wildcard, now.Add(time.Hour))
		if err == nil && (s.cfg.ReuseAuthz || reuse.PreAuth) {
			order.AuthzIDs = append(order.AuthzIDs, reuse.ID)
			continue
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return storeError("authorization", err)
		}
		na := s.newAuthorization(r.account.ID, id, now)
		fresh = append(fresh, na)
		order.AuthzIDs = append(order.AuthzIDs, na.ID)
		allValid = false
	}
	if len(fresh) > 0 {
		pending, err := s.store.CountPendingAuthorizations(ctx, r.account.ID)
		if err != nil {
			return storeError("authorizations", err)
		}
		if int(pending)+len(fresh) > s.cfg.MaxPendingAuthzs {
			return RateLimited(time.Minute, "the account has %d pending authorizations; at most %d may be pending (complete or deactivate some)", pending, s.cfg.MaxPendingAuthzs)
		}
	}
	if allValid {
		// Every authorization was reused and is valid (RFC 8555 §7.1.6).
		order.Status = StatusReady
	}
	if replaced != nil {
		if err := s.markReplaced(c, replaced, order.ID); err != nil {
			return err
		}
	}
	if err := s.store.CreateOrder(ctx, order, fresh); err != nil {
		if replaced != nil {
			_ = s.store.ClearReplaced(ctx, replaced.ID, order.ID)
		}
		return storeError("order", err)
	}
	return writeJSON(c, http.StatusCreated, s.orderJSON(c, order))
}

// checkIdentifiers parses every identifier; refusals are collected as
// subproblems, one per identifier (RFC 8555 §6.7.1).
func (s *Server) checkIdentifiers(ids []Identifier) ([]normalizedIdentifier, error) {
	if len(ids) == 0 {
		return nil, Malformed("the order has no identifiers")
	}
	if len(ids) > s.cfg.MaxIdentifiers {
		return nil, RejectedIdentifier("an order may have at most %d identifiers, this one has %d", s.cfg.MaxIdentifiers, len(ids))
	}
	out := make([]normalizedIdentifier, 0, len(ids))
	seen := make(map[normalizedIdentifier]bool, len(ids))
	var subs []*Problem
	for _, id := range ids {
		n, p := ParseIdentifier(id)
		if p != nil {
			subs = append(subs, p)
			continue
		}
		if seen[n] {
			return nil, Malformed("identifier %q appears twice", id.Value)
		}
		seen[n] = true
		out = append(out, n)
	}
	if len(subs) == 1 {
		return nil, subs[0]
	}
	if len(subs) > 1 {
		p := RejectedIdentifier("%d identifiers were refused; see subproblems", len(subs))
		if allUnsupported(subs) {
			p = UnsupportedIdentifier("%d identifiers were refused; see subproblems", len(subs))
		}
		p.Subproblems = subs
		return nil, p
	}
	return out, nil
}

func allUnsupported(ps []*Problem) bool {
	for _, p := range ps {
		if p.Type != ProblemNS+"unsupportedIdentifier" {
			return false
		}
	}
	return true
}

// names are the identifiers as they appear in the certificate's SANs.
func names(ids []normalizedIdentifier) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.name()
	}
	return out
}

// orderValidity checks optional notBefore/notAfter (RFC 8555 §7.4) against
// the profile: the span may not exceed its validity, and notBefore may lie
// at most a day in the past and 30 days in the future. Each field on its
// own is "not given" when absent, null or Go's zero time (see
// requestedTime); nil, nil means the profile's default validity.
func orderValidity(nb, na string, now time.Time, max time.Duration) (*time.Time, *time.Time, *Problem) {
	start, nbGiven, p := requestedTime("notBefore", nb)
	if p != nil {
		return nil, nil, p
	}
	end, naGiven, p := requestedTime("notAfter", na)
	if p != nil {
		return nil, nil, p
	}
	if !nbGiven && !naGiven {
		return nil, nil, nil
	}
	if !nbGiven {
		start = now
	}
	if !naGiven {
		end = start.Add(max)
	}
	switch {
	case !end.After(start):
		return nil, nil, Malformed("notAfter must be after notBefore")
	case end.Sub(start) > max:
		return nil, nil, Malformed("the requested validity exceeds the profile's maximum of %s", max)
	case start.Before(now.Add(-24 * time.Hour)):
		return nil, nil, Malformed("notBefore may be at most 24h in the past")
	case start.After(now.Add(30 * 24 * time.Hour)):
		return nil, nil, Malformed("notBefore may be at most 30 days in the future")
	}
	return &start, &end, nil
}

// requestedTime parses one of newOrder's optional timestamps. Absent and
// null (both "" after decoding) and Go's zero time 0001-01-01T00:00:00Z
// mean "not given": Go clients that marshal a time.Time with omitempty
// (smallstep's, behind `step ca certificate`) always send the zero time,
// and step-ca and Vault read it so.
func requestedTime(field, v string) (time.Time, bool, *Problem) {
	if v == "" {
		return time.Time{}, false, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, false, Malformed("%s %q is not an RFC 3339 timestamp", field, v)
	}
	if t.IsZero() {
		return time.Time{}, false, nil
	}
	return t.UTC(), true, nil
}

// newAuthorization builds a pending authorization with the challenges its
// identifier allows, as the challenge-type table (validate.Offered) says:
// a wildcard gets the DNS challenges only (RFC 8555 §7.1.3), an IP
// http-01 and tls-alpn-01 (RFC 8738 §7).
func (s *Server) newAuthorization(accountID string, id normalizedIdentifier, now time.Time) Authorization {
	a := Authorization{
		ID: NewID(), AccountID: accountID, Type: id.Type, Value: id.Value,
		Wildcard: id.Wildcard, Status: StatusPending,
		Expires: now.Add(s.cfg.AuthzLifetime), CreatedAt: now,
	}
	for i, t := range s.offeredTypes(id) {
		a.Challenges = append(a.Challenges, Challenge{
			ID: NewID(), AuthzID: a.ID, Type: t, Token: newToken(),
			Status: StatusPending, Position: i,
		})
	}
	return a
}

// newToken returns a challenge token with 256 bits of entropy, base64url
// (RFC 8555 §8.3 asks for at least 128).
func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// getOrder serves POST-as-GET on an order (RFC 8555 §7.4).
func (s *Server) getOrder(c echo.Context, r *request) error {
	o, err := s.ownOrder(c, r)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, s.orderJSON(c, o))
}

// ownOrder loads the order named in the path and checks that the signing
// account owns it.
func (s *Server) ownOrder(c echo.Context, r *request) (*Order, error) {
	o, err := s.store.GetOrder(c.Request().Context(), c.Param("id"))
	if err != nil {
		return nil, storeError("order", err)
	}
	if o.AccountID != r.account.ID {
		return nil, Unauthorized("the order belongs to another account")
	}
	return o, nil
}

// orderJSON renders an order for every answer that carries one (newOrder,
// POST-as-GET, finalize). Each gets the order's URL in Location, as
// newOrder must (RFC 8555 §7.4), since some clients keep the URL from the
// latest answer; pending and processing orders carry Retry-After so that
// clients poll politely.
func (s *Server) orderJSON(c echo.Context, o *Order) orderJSON {
	c.Response().Header().Set("Location", s.orderURL(c, o.ID))
	status := o.Status
	if (status == StatusPending || status == StatusReady) && s.now().After(o.Expires) {
		status = StatusInvalid
	}
	out := orderJSON{
		Status:         status,
		Expires:        timestamp(o.Expires),
		Identifiers:    o.Identifiers,
		Authorizations: make([]string, len(o.AuthzIDs)),
		Finalize:       s.orderURL(c, o.ID) + "/finalize",
		Replaces:       o.Replaces,
		Profile:        o.Profile,
	}
	if o.NotBefore != nil {
		out.NotBefore = timestamp(*o.NotBefore)
	}
	if o.NotAfter != nil {
		out.NotAfter = timestamp(*o.NotAfter)
	}
	out.Error = o.Error
	for i, id := range o.AuthzIDs {
		out.Authorizations[i] = s.authzURL(c, id)
	}
	if o.CertificateID != "" {
		out.Certificate = s.certURL(c, o.CertificateID)
	}
	if status == StatusPending || status == StatusProcessing {
		retryAfter(c, 1)
	}
	return out
}
