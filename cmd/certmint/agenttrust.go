package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/certmint/certmint/acme/agent"
	"github.com/certmint/certmint/internal/truststore"
)

// agentTrustEvery is how often a running agent with --install-trust
// brings the trust stores in step with the server's bundle: a rotated
// root reaches the machine within the hour.
const agentTrustEvery = time.Hour

// findAgentTrustStores finds every store, as `certmint trust install`
// without store flags does.
func findAgentTrustStores(log *slog.Logger) []truststore.Store {
	found := truststore.Find(truststore.Kinds{}, truststore.DefaultEnv())
	for _, n := range found.Notes {
		log.Warn(n)
	}
	return found.Stores
}

// syncAgentTrust is one `--install-trust` run: it logs each change and
// each failed store, and fails if the bundle or any store did.
func syncAgentTrust(ctx context.Context, ag *agent.Agent, log *slog.Logger, stores []truststore.Store) error {
	results, err := ag.SyncTrust(ctx, stores)
	return logTrustResults(log, results, err)
}

func logTrustResults(log *slog.Logger, results []truststore.Result, err error) error {
	if err != nil {
		return errors.New(oneLine(err))
	}
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			failed++
			log.Error("trust store failed", "store", r.Store, "err", oneLine(r.Err))
			continue
		}
		for _, c := range r.Added {
			log.Info("root trusted", "store", r.Store, "root", c.Subject.String(), "sha256", truststore.Fingerprint(c))
		}
		for _, fp := range r.Removed {
			log.Info("root left the bundle, removed", "store", r.Store, "sha256", fp)
		}
	}
	if len(results) == 0 {
		return errors.New("--install-trust: no trust store found on this machine")
	}
	if failed > 0 {
		return fmt.Errorf("--install-trust: %d of %d trust stores failed", failed, len(results))
	}
	return nil
}

// keepAgentTrust syncs at once and then every agentTrustEvery until ctx
// ends; a failure is logged and tried again on the next round.
func keepAgentTrust(ctx context.Context, ag *agent.Agent, log *slog.Logger) {
	stores := findAgentTrustStores(log)
	report := func(results []truststore.Result, err error) {
		if err := logTrustResults(log, results, err); err != nil {
			log.Error("trust stores not all updated", "err", err.Error())
		}
	}
	report(ag.SyncTrust(ctx, stores))
	ag.KeepTrust(ctx, agentTrustEvery, stores, report)
}
