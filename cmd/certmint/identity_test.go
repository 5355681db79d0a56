package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/certmint/certmint/acme/eab"
	"github.com/certmint/certmint/storage"
)

// TestTrustDomainFlag: --trust-domain is read like every flag (YAML,
// CERTMINT_TRUST_DOMAIN) and a name that is not a SPIFFE trust domain
// stops start-up with exit status 2.
func TestTrustDomainFlag(t *testing.T) {
	file := filepath.Join(t.TempDir(), "certmint.yaml")
	if err := os.WriteFile(file, []byte("trust-domain: corp.example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	serve, _, err := newRootCmd().Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.ParseFlags([]string{"--config", file}); err != nil {
		t.Fatal(err)
	}
	if err := applyConfig(serve); err != nil {
		t.Fatal(err)
	}
	if got := serve.Flags().Lookup("trust-domain").Value.String(); got != "corp.example" {
		t.Fatalf("--trust-domain from the file = %q", got)
	}
	for _, bad := range []string{"Corp.Example", "spiffe://corp.example", "corp.example/payments", "corp example", "corp..example"} {
		o := serveOptions{TrustDomainName: bad}
		var ue *usageError
		if err := o.validateTrustDomain(); !errors.As(err, &ue) || !strings.Contains(err.Error(), "--trust-domain") {
			t.Errorf("--trust-domain %q: %v, want a usage error naming the flag", bad, err)
		}
	}
	t.Setenv("CERTMINT_TRUST_DOMAIN", "not a domain")
	if code := run([]string{"serve", "--data", t.TempDir()}); code != 2 {
		t.Fatalf("CERTMINT_TRUST_DOMAIN with a bad name: exit %d, want 2", code)
	}
}

// TestCheckWorkloadKeys: an active workload key without a trust domain
// stops start-up (exit 2, naming the key and both ways out); with one, or
// once the key is revoked, the server starts.
func TestCheckWorkloadKeys(t *testing.T) {
	ctx := context.Background()
	st, err := storage.Open(ctx, filepath.Join(t.TempDir(), "certmint.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.DiscardHandler)
	if err := checkWorkloadKeys(ctx, st, spiffeid.TrustDomain{}, log); err != nil {
		t.Fatalf("no keys: %v", err)
	}
	key, _, err := eab.NewKey(eab.Spec{Label: "payments", Workload: "payments/sender"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateEABKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	err = checkWorkloadKeys(ctx, st, spiffeid.TrustDomain{}, log)
	var ue *usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), key.ID) || !strings.Contains(err.Error(), "--trust-domain") ||
		!strings.Contains(err.Error(), "admin eab revoke") {
		t.Fatalf("workload key without a trust domain: %v", err)
	}
	if err := checkWorkloadKeys(ctx, st, spiffeid.RequireTrustDomainFromString("corp.example"), log); err != nil {
		t.Fatalf("with a trust domain: %v", err)
	}
	long := spiffeid.RequireTrustDomainFromString(strings.Repeat("a", 250))
	long2, _, _ := eab.NewKey(eab.Spec{Workload: strings.Repeat("b", 1790)})
	if err := st.CreateEABKey(ctx, long2); err != nil {
		t.Fatal(err)
	}
	if err := checkWorkloadKeys(ctx, st, long, log); !errors.As(err, &ue) || !strings.Contains(err.Error(), "2048") {
		t.Fatalf("an ID over 2048 bytes: %v", err)
	}
	for _, k := range []string{key.ID, long2.ID} {
		if err := st.RevokeEABKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := checkWorkloadKeys(ctx, st, spiffeid.TrustDomain{}, log); err != nil {
		t.Fatalf("revoked workload keys: %v", err)
	}
}
