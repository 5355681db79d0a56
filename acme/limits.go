package acme

import (
	"context"
	"fmt"

	"github.com/labstack/echo/v4"

	"github.com/certmint/certmint/acme/ratelimit"
)

// allow counts one event against rule for key and refuses it with
// rateLimited and Retry-After once the rule's limit is reached (RFC 8555
// §6.7). The counters live in the database, so limits hold across
// replicas; a database failure is serverInternal, not a free pass.
func (s *Server) allow(ctx context.Context, rule ratelimit.Rule, key, what string) error {
	if s.cfg.Limiter == nil || !rule.Enabled() {
		return nil
	}
	ok, retry, err := s.cfg.Limiter.Allow(ctx, rule, key)
	if err != nil {
		return storeError("rate limit", err)
	}
	if !ok {
		return RateLimited(retry, "too many %s (limit %d per %s); retry after %s", what, rule.Limit, rule.Window, retry)
	}
	return nil
}

// checkFailures refuses a validation once too many validations of the
// account or client address failed recently.
func (s *Server) checkFailures(c echo.Context, accountID string) error {
	if s.cfg.Limiter == nil {
		return nil
	}
	ctx := c.Request().Context()
	for _, rk := range s.failureRules(accountID, c.RealIP()) {
		if !rk.rule.Enabled() {
			continue
		}
		ok, retry, err := s.cfg.Limiter.Check(ctx, rk.rule, rk.key)
		if err != nil {
			return storeError("rate limit", err)
		}
		if !ok {
			return RateLimited(retry, "too many failed validations (limit %d per %s); retry after %s", rk.rule.Limit, rk.rule.Window, retry)
		}
	}
	return nil
}

// recordFailure counts a failed validation for the account and address.
func (s *Server) recordFailure(ctx context.Context, accountID, ip string) {
	if s.cfg.Limiter == nil {
		return
	}
	for _, rk := range s.failureRules(accountID, ip) {
		if rk.rule.Enabled() {
			if err := s.cfg.Limiter.Record(ctx, rk.rule, rk.key); err != nil {
				s.log.Warn("count failed validation", "err", fmt.Sprint(err))
			}
		}
	}
}

// allowOrder applies the new-order limits (also to newAuthz, which opens
// validation work just as an order does).
func (s *Server) allowOrder(c echo.Context, accountID string) error {
	ctx := c.Request().Context()
	if err := s.allow(ctx, s.cfg.RateLimits.NewOrderPerAccount, "acct:"+accountID, "new orders for this account"); err != nil {
		return err
	}
	return s.allow(ctx, s.cfg.RateLimits.NewOrderPerIP, ratelimit.IPKey(c.RealIP()), "new orders from this address")
}

type ruleKey struct {
	rule ratelimit.Rule
	key  string
}

// failureRules are the failed-validation limits and the keys they count
// under, for checking before a validation and counting after one fails.
func (s *Server) failureRules(accountID, ip string) []ruleKey {
	return []ruleKey{
		{s.cfg.RateLimits.FailedValidationsPerAccount, "acct:" + accountID},
		{s.cfg.RateLimits.FailedValidationsPerIP, ratelimit.IPKey(ip)},
	}
}
