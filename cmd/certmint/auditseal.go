package main

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"

	"github.com/certmint/certmint/internal/auditchain"
)

// auditSealOptions time the audit sealer (docs/audit.md).
type auditSealOptions struct {
	Every  time.Duration
	Settle time.Duration
}

func (o *auditSealOptions) register(f *pflag.FlagSet) {
	f.DurationVar(&o.Every, "audit-seal-every", auditchain.DefaultEvery, "how often one replica seals settled audit entries into the hash chain")
	f.DurationVar(&o.Settle, "audit-seal-settle", auditchain.DefaultSettle,
		"age an audit entry must reach before it is sealed: at least 3 x --db-statement-timeout, plus the clock difference between replicas")
}

// validate keeps the settle window above the longest transaction, so no
// entry can commit into a range already sealed (see auditchain.Sealer).
func (o *auditSealOptions) validate(statementTimeout time.Duration) error {
	if o.Every < time.Second {
		return usagef("--audit-seal-every %s must be at least 1s", o.Every)
	}
	if o.Settle < 3*statementTimeout {
		return usagef("--audit-seal-settle %s must be at least 3 x --db-statement-timeout (%s), or a slow transaction could commit an entry into a range already sealed",
			o.Settle, 3*statementTimeout)
	}
	return nil
}

// auditSealing is the serve process's sealer and the seal key it shares
// with the console.
type auditSealing struct {
	key atomic.Pointer[[]byte]
}

// Key is the seal key once derived; nil without CERTMINT_CA_PASSPHRASE
// (or until the derivation at start-up finished).
func (s *auditSealing) Key() []byte {
	if k := s.key.Load(); k != nil {
		return *k
	}
	return nil
}

// runSealer derives the seal key (Argon2id, once, here rather than
// before serving) and seals until ctx ends.
func (a *app) runSealer(ctx context.Context) {
	var key []byte
	if len(a.opts.Passphrase) > 0 {
		for ctx.Err() == nil {
			k, err := auditchain.ServerKey(ctx, a.store, a.opts.Passphrase)
			if err == nil {
				key = k
				a.sealing.key.Store(&key)
				break
			}
			a.log.Warn("audit sealing: derive the seal key", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(a.opts.AuditSeal.Every):
			}
		}
	}
	s := &auditchain.Sealer{Store: a.store, Holder: a.holder, Every: a.opts.AuditSeal.Every,
		Settle: a.opts.AuditSeal.Settle, Key: key, Logger: a.log}
	s.Run(ctx)
}
