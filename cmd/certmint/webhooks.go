package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/certmint/certmint/acme/validate"
	"github.com/certmint/certmint/internal/webhook"
)

// webhookFlags registers serve's webhook tuning. Both are hidden: the
// defaults suit production, and tests shorten them to run in seconds.
func webhookFlags(cmd *cobra.Command, o *serveOptions) {
	f := cmd.Flags()
	f.DurationVar(&o.WebhookRetry, "webhook-retry-base", 30*time.Second, "delay before a failed webhook delivery's first retry; each further one doubles, up to 1h, for a day")
	f.DurationVar(&o.WebhookPoll, "webhook-poll", 2*time.Second, "how often each replica reads the webhook outbox and checks for overdue renewals")
	_ = f.MarkHidden("webhook-retry-base")
	_ = f.MarkHidden("webhook-poll")
}

// validateWebhooks checks the webhook tuning flags.
func (o *serveOptions) validateWebhooks() error {
	if o.WebhookRetry < time.Second {
		return usagef("--webhook-retry-base %s must be at least 1s", o.WebhookRetry)
	}
	if o.WebhookPoll < 100*time.Millisecond {
		return usagef("--webhook-poll %s must be at least 100ms", o.WebhookPoll)
	}
	return nil
}

// caExpiringWithin is when ca.expiring starts: a CA certificate with less
// than this left is announced once a day until it is replaced.
const caExpiringWithin = 30 * 24 * time.Hour

// newDispatcher wires the webhook dispatcher: the validation address
// policy for every connection, the system roots plus this CA's (internal
// receivers often hold a certmint certificate), and the sweeps that turn
// the passing of time into events.
func (a *app) newDispatcher() *webhook.Dispatcher {
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	roots.AddCert(a.ca.Root())
	l := a.opts.Limits
	client := webhook.NewClient(validate.PolicyDialer(l.allowNets, l.denyNets, 5*time.Second), roots)
	return &webhook.Dispatcher{
		Store:     a.store,
		Client:    client,
		Holder:    a.holder,
		RetryBase: a.opts.WebhookRetry,
		Poll:      a.opts.WebhookPoll,
		Logger:    a.log,
		Sweeps:    []func(context.Context, time.Time){a.sweepOverdue, a.sweepCAExpiring},
	}
}

// sweepOverdue queues renewal.overdue for lineages that just went past
// their renewal window; the store makes each announcement once across
// replicas.
func (a *app) sweepOverdue(ctx context.Context, now time.Time) {
	if n, err := a.store.NotifyOverdue(ctx, now); err != nil {
		a.log.Warn("webhook: overdue sweep", "err", err)
	} else if n > 0 {
		a.log.Info("renewals overdue", "lineages", n)
	}
}

// sweepCAExpiring queues ca.expiring once a day for each CA certificate
// within caExpiringWithin of its end, and for the intermediate while an
// offline root's rotation is due (the 90-day warning of the CA page and
// the log, issue 15): the operator-alert path of that warning.
func (a *app) sweepCAExpiring(ctx context.Context, now time.Time) {
	if a.issuers != nil {
		if warning := a.issuers.Warning(); warning != "" {
			inter := a.ca.Intermediate()
			key := fmt.Sprintf("%s/rotation-due/%x", webhook.CAExpiring, inter.SerialNumber)
			data := map[string]any{"role": "intermediate", "subject": inter.Subject.CommonName,
				"serial": fmt.Sprintf("%x", inter.SerialNumber), "not_after": inter.NotAfter.UTC().Format(time.RFC3339),
				"warning": warning}
			if _, err := a.store.EmitOnce(ctx, key, 24*time.Hour, webhook.CAExpiring, data, now); err != nil {
				a.log.Warn("webhook: CA rotation warning", "err", err)
			}
		}
	}
	for _, c := range []struct {
		role string
		cert *x509.Certificate
	}{{"root", a.ca.Root()}, {"intermediate", a.ca.Intermediate()}} {
		if c.cert.NotAfter.Sub(now) > caExpiringWithin {
			continue
		}
		key := fmt.Sprintf("%s/%s/%x", webhook.CAExpiring, c.role, c.cert.SerialNumber)
		data := map[string]any{"role": c.role, "subject": c.cert.Subject.CommonName,
			"serial": fmt.Sprintf("%x", c.cert.SerialNumber), "not_after": c.cert.NotAfter.UTC().Format(time.RFC3339)}
		if _, err := a.store.EmitOnce(ctx, key, 24*time.Hour, webhook.CAExpiring, data, now); err != nil {
			a.log.Warn("webhook: CA expiry check", "err", err)
		}
	}
}
