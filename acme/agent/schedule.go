package agent

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/go-acme/lego/v4/acme/api"
	"github.com/go-acme/lego/v4/certificate"
)

// Renewal timing. With no renewal information the agent renews at 2/3 of
// the lifetime, up to 1/20 of the lifetime earlier at random so a fleet
// issued together does not renew together.
const (
	renewFraction  = 2.0 / 3.0
	jitterFraction = 1.0 / 20.0
	ariRecheckMin  = time.Minute
	ariRecheckMax  = 24 * time.Hour
	ariRecheckDef  = 6 * time.Hour
)

// fallbackRenewAt is 2/3 of the way from NotBefore to NotAfter minus a
// random jitter in [0, lifetime/20).
func fallbackRenewAt(notBefore, notAfter time.Time, r float64) time.Time {
	life := notAfter.Sub(notBefore)
	at := notBefore.Add(time.Duration(float64(life) * renewFraction))
	return at.Add(-time.Duration(float64(life) * jitterFraction * r))
}

// backoff is the delay after the n-th consecutive failure: RetryMin
// doubled per failure, capped at RetryMax, ±10% jitter, and never more than
// a third of the time left before notAfter (the final push: attempts get
// denser as expiry comes closer), with a floor of one second.
func backoff(n int, minD, maxD, remaining time.Duration, r float64) time.Duration {
	d := minD
	for i := 1; i < n && d < maxD; i++ {
		d *= 2
	}
	d = min(d, maxD)
	d = time.Duration(float64(d) * (0.9 + 0.2*r))
	if remaining > 0 {
		d = min(d, remaining/3)
	}
	return max(d, time.Second)
}

// plan says when to act next and whether that act is a renewal (true) or
// only a new look at the renewal information (false).
func (a *Agent) plan(ctx context.Context) (time.Time, bool) {
	if a.failures > 0 {
		return a.retryAt, true
	}
	cur := a.Current()
	if cur == nil {
		return a.cfg.Now(), true
	}
	now := a.cfg.Now()
	if a.renewAt.IsZero() || (!a.ariCheckAt.IsZero() && !now.Before(a.ariCheckAt)) {
		a.checkARI(ctx, cur.Leaf.NotBefore, cur.Leaf.NotAfter)
	}
	if !a.ariCheckAt.IsZero() && a.ariCheckAt.Before(a.renewAt) {
		return a.ariCheckAt, false
	}
	return a.renewAt, true
}

// checkARI asks the server for the suggested renewal window (RFC 9773
// §4.2) and picks a uniformly random time in it (§4.2 step 2); without ARI,
// or when the server cannot be reached, it keeps the 2/3 rule.
func (a *Agent) checkARI(ctx context.Context, notBefore, notAfter time.Time) {
	if a.renewAt.IsZero() {
		a.renewAt = fallbackRenewAt(notBefore, notAfter, rand.Float64())
	}
	a.ariCheckAt = time.Time{}
	if ctx.Err() != nil {
		return
	}
	client, err := a.legoClient()
	if err != nil {
		a.log.Debug("renewal information unavailable", "err", err.Error())
		return
	}
	info, err := client.Certificate.GetRenewalInfo(certificate.RenewalInfoRequest{Cert: a.Current().Leaf})
	if errors.Is(err, api.ErrNoARI) {
		a.ariOffered = false
		return
	}
	if err != nil {
		a.client = nil
		a.log.Debug("renewal information unavailable", "err", err.Error())
		return
	}
	a.ariOffered = true
	start, end := info.SuggestedWindow.Start, info.SuggestedWindow.End
	if start.IsZero() || end.Before(start) {
		return
	}
	at := start
	if w := end.Sub(start); w > 0 {
		at = start.Add(time.Duration(rand.Int64N(int64(w))))
	}
	a.renewAt = at
	recheck := info.RetryAfter
	if recheck <= 0 {
		recheck = ariRecheckDef
	}
	a.ariCheckAt = a.cfg.Now().Add(min(max(recheck, ariRecheckMin), ariRecheckMax))
	a.log.Debug("renewal information", "window_start", start, "window_end", end, "renew_at", at)
}

// failed records a failed renewal and schedules the retry.
func (a *Agent) failed(err error) {
	a.failures++
	var remaining time.Duration
	if cur := a.Current(); cur != nil {
		remaining = cur.Leaf.NotAfter.Sub(a.cfg.Now())
	}
	d := backoff(a.failures, a.cfg.RetryMin, a.cfg.RetryMax, remaining, rand.Float64())
	a.retryAt = a.cfg.Now().Add(d)
	a.log.Warn("renewal failed", "err", err.Error(), "attempt", a.failures, "retry_in", d.Round(time.Millisecond))
	if a.cfg.OnError != nil {
		a.cfg.OnError(err, d)
	}
}

// loop sleeps until the plan's next time and acts, until ctx ends.
func (a *Agent) loop(ctx context.Context) {
	a.refreshBundleLogged(ctx)
	for {
		at, renew := a.plan(ctx)
		timer := time.NewTimer(max(at.Sub(a.cfg.Now()), 0))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		a.refreshBundleLogged(ctx)
		if !renew {
			continue
		}
		if err := a.obtain(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			a.failed(err)
			continue
		}
		a.failures = 0
	}
}
