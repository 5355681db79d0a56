package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/certmint/certmint/acme/workload"
	"github.com/certmint/certmint/storage"
)

// trustDomainFlag registers --trust-domain: the SPIFFE trust domain of the
// workload identities EAB keys bind (docs/workload-identity.md).
func trustDomainFlag(cmd *cobra.Command, o *serveOptions) {
	cmd.Flags().StringVar(&o.TrustDomainName, "trust-domain", "", "SPIFFE trust domain `NAME` (e.g. corp.example) of workload identities: an EAB key with a workload (admin eab create --workload PATH) puts spiffe://NAME/PATH in its accounts' certificates; also serves /spiffe/bundle")
}

// validateTrustDomain reads --trust-domain with go-spiffe's rules.
func (o *serveOptions) validateTrustDomain() error {
	if o.TrustDomainName == "" {
		return nil
	}
	td, err := workload.ParseTrustDomain(o.TrustDomainName)
	if err != nil {
		return usagef("--trust-domain %q is not a SPIFFE trust domain name: %v (e.g. corp.example)", o.TrustDomainName, err)
	}
	o.TrustDomain = td
	return nil
}

// checkWorkloadKeys refuses to start while an active EAB key binds a
// workload identity the server cannot name: without --trust-domain its
// accounts would get no certificate at all, and their receivers, which
// check the identity, would refuse whatever they had at the next renewal.
// Failing here says so before any client notices. The way out is either
// flag, or revoking the key.
func checkWorkloadKeys(ctx context.Context, st storage.EABStore, td spiffeid.TrustDomain, log *slog.Logger) error {
	after, bound := "", 0
	for {
		keys, err := st.ListEABKeys(ctx, "", storage.Page{After: after, Limit: 500})
		if err != nil {
			return fmt.Errorf("read the EAB keys: %w", err)
		}
		for _, k := range keys {
			if k.Revoked || k.Workload == "" {
				continue
			}
			if _, err := workload.ID(td, k.Workload); err != nil {
				if td.IsZero() {
					return usagef("EAB key %s binds workload identity %s, but --trust-domain is not set: set it (e.g. --trust-domain corp.example, CERTMINT_TRUST_DOMAIN) or revoke the key (certmint admin eab revoke %s)", k.ID, k.Workload, k.ID)
				}
				return usagef("EAB key %s: %v; revoke it (certmint admin eab revoke %s) or shorten --trust-domain", k.ID, err, k.ID)
			}
			bound++
		}
		if len(keys) < 500 {
			break
		}
		after = keys[len(keys)-1].ID
	}
	if !td.IsZero() {
		log.Info("workload identities", "trust_domain", td.Name(), "active_workload_keys", bound)
	}
	return nil
}
