// Package ratelimit enforces certmint's request rate limits (issue 7):
// per client IP and per account, on newAccount, newOrder and failed
// validations. Counters live in the database (Store, which storage implements), so a
// limit holds across every replica sharing it; each check is one SQL
// statement. An exceeded limit is answered by the ACME server with
// rateLimited and Retry-After (RFC 8555 §6.7).
package ratelimit

import (
	"errors"
	"fmt"
	"time"
)

// Rule limits one kind of event: at most Limit events per Window for one
// key (an account, a client IP). A Limit or Window of 0 disables the rule.
type Rule struct {
	Name   string        // stable identifier, part of the database key, e.g. "newOrder/account"
	Limit  int           // events allowed per window
	Window time.Duration // a whole number of seconds
}

// Enabled reports whether the rule limits anything.
func (r Rule) Enabled() bool { return r.Limit > 0 && r.Window > 0 }

// Config holds the rules the ACME server applies.
type Config struct {
	NewAccountPerIP             Rule // newAccount requests (RFC 8555 §7.3) from one client IP
	NewOrderPerAccount          Rule // newOrder requests (§7.4) of one account
	NewOrderPerIP               Rule // newOrder requests from one client IP
	FailedValidationsPerAccount Rule // challenges (§7.5.1) of one account that ended invalid
	FailedValidationsPerIP      Rule // challenges that ended invalid, by the IP that asked for them
}

// DefaultConfig returns limits that no normal fleet meets, while still
// stopping a runaway client (a crash-looping agent, a script without
// back-off) from filling the database: a fleet of 10,000 services renewing
// daily makes about 400 orders an hour. Load tests (certmint bench) do
// exceed them and should run with the limits raised or off.
//
//	newAccount per IP              1,000 per hour
//	newOrder per account          10,000 per hour
//	newOrder per IP               20,000 per hour
//	failed validations per account 1,000 per hour
//	failed validations per IP      2,000 per hour
func DefaultConfig() Config {
	return Config{
		NewAccountPerIP:             Rule{Name: "newAccount/ip", Limit: 1000, Window: time.Hour},
		NewOrderPerAccount:          Rule{Name: "newOrder/account", Limit: 10000, Window: time.Hour},
		NewOrderPerIP:               Rule{Name: "newOrder/ip", Limit: 20000, Window: time.Hour},
		FailedValidationsPerAccount: Rule{Name: "failedValidation/account", Limit: 1000, Window: time.Hour},
		FailedValidationsPerIP:      Rule{Name: "failedValidation/ip", Limit: 2000, Window: time.Hour},
	}
}

// Rules lists the rules of c in a fixed order.
func (c Config) Rules() []Rule {
	return []Rule{c.NewAccountPerIP, c.NewOrderPerAccount, c.NewOrderPerIP,
		c.FailedValidationsPerAccount, c.FailedValidationsPerIP}
}

// Validate checks c once at start-up; the error names the bad rule.
func (c Config) Validate() error {
	names := map[string]bool{}
	var errs []error
	for _, r := range c.Rules() {
		if err := r.validate(); err != nil {
			errs = append(errs, err)
		}
		if r.Enabled() {
			if names[r.Name] {
				errs = append(errs, fmt.Errorf("rate limit %q: name used twice", r.Name))
			}
			names[r.Name] = true
		}
	}
	return errors.Join(errs...)
}

func (r Rule) validate() error {
	switch {
	case r.Limit < 0:
		return fmt.Errorf("rate limit %q: limit %d is negative (0 turns the rule off)", r.Name, r.Limit)
	case r.Window < 0:
		return fmt.Errorf("rate limit %q: window %s is negative", r.Name, r.Window)
	case !r.Enabled():
		return nil
	case r.Name == "":
		return errors.New("rate limit without a name")
	case r.Window < time.Second || r.Window%time.Second != 0:
		return fmt.Errorf("rate limit %q: window %s must be a whole number of seconds", r.Name, r.Window)
	}
	return nil
}
