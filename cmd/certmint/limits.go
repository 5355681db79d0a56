package main

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/certmint/certmint/acme/policy"
	"github.com/certmint/certmint/acme/ratelimit"
)

// limitOptions are the resource limits of `serve`, all with defaults that
// suit a normal fleet.
type limitOptions struct {
	MaxBody             int64
	MaxIdentifiers      int
	MaxPendingAuthzs    int
	ValidationWorkers   int
	ValidationTimeout   time.Duration
	ValidationAllow     []string
	ValidationDeny      []string
	allowNets, denyNets []netip.Prefix
	ReadHeaderTimeout   time.Duration
	ReadTimeout         time.Duration
	WriteTimeout        time.Duration
	IdleTimeout         time.Duration
	MaxHeaderBytes      int
	DBMaxConns          int
	DBStatementTimeout  time.Duration
}

func (l *limitOptions) validate() error {
	switch {
	case l.MaxBody < 1024:
		return usagef("--max-body %d must be at least 1024 bytes", l.MaxBody)
	case l.MaxIdentifiers < 1:
		return usagef("--max-identifiers %d must be at least 1", l.MaxIdentifiers)
	case l.MaxPendingAuthzs < 1:
		return usagef("--max-pending-authzs %d must be at least 1", l.MaxPendingAuthzs)
	case l.ValidationWorkers < 1 || l.ValidationWorkers > 10000:
		return usagef("--validation-workers %d must be between 1 and 10000", l.ValidationWorkers)
	case l.ValidationTimeout < time.Second:
		return usagef("--validation-timeout %s must be at least 1s", l.ValidationTimeout)
	case l.MaxHeaderBytes < 4096:
		return usagef("--max-header-bytes %d must be at least 4096", l.MaxHeaderBytes)
	case l.DBMaxConns < 1:
		return usagef("--db-max-conns %d must be at least 1", l.DBMaxConns)
	}
	for name, d := range map[string]time.Duration{"--read-header-timeout": l.ReadHeaderTimeout, "--read-timeout": l.ReadTimeout,
		"--write-timeout": l.WriteTimeout, "--idle-timeout": l.IdleTimeout, "--db-statement-timeout": l.DBStatementTimeout} {
		if d < time.Second {
			return usagef("%s %s must be at least 1s", name, d)
		}
	}
	var err error
	if l.allowNets, err = policy.ParsePrefixes(l.ValidationAllow); err != nil {
		return usagef("--validation-allow-net: %v", err)
	}
	if l.denyNets, err = policy.ParsePrefixes(l.ValidationDeny); err != nil {
		return usagef("--validation-deny-net: %v", err)
	}
	return nil
}

// parseRateLimits reads the --rate-limit-* flags (N/DURATION, 0 = off).
func (o *serveOptions) parseRateLimits() error {
	c := ratelimit.DefaultConfig()
	rules := map[string]*ratelimit.Rule{
		"rate-limit-new-account-per-ip":             &c.NewAccountPerIP,
		"rate-limit-new-order-per-account":          &c.NewOrderPerAccount,
		"rate-limit-new-order-per-ip":               &c.NewOrderPerIP,
		"rate-limit-failed-validations-per-account": &c.FailedValidationsPerAccount,
		"rate-limit-failed-validations-per-ip":      &c.FailedValidationsPerIP,
	}
	for flag, rule := range rules {
		spec := strings.TrimSpace(*o.RateSpecs[flag])
		if spec == "0" || spec == "off" {
			rule.Limit, rule.Window = 0, 0
			continue
		}
		n, d, ok := strings.Cut(spec, "/")
		limit, err1 := strconv.Atoi(n)
		window, err2 := time.ParseDuration(d)
		if !ok || err1 != nil || err2 != nil || limit < 0 || window < time.Second {
			return usagef("--%s %q must be N/DURATION (e.g. 300/1h) or 0", flag, spec)
		}
		rule.Limit, rule.Window = limit, window
	}
	if err := c.Validate(); err != nil {
		return usagef("rate limits: %v", err)
	}
	o.RateLimits = c
	return nil
}

// shortDuration prints 1h0m0s as 1h.
func shortDuration(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	return strings.TrimSuffix(s, "0m")
}
