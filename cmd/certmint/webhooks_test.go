package main

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certmint/certmint/ca"
	"github.com/certmint/certmint/internal/audit"
	"github.com/certmint/certmint/internal/webhook"
	"github.com/certmint/certmint/storage"
)

// caExpiringApp is an app with a fresh CA and SQLite store that has one
// endpoint subscribed to ca.expiring.
func caExpiringApp(t *testing.T) (*app, storage.Store, *ca.CA) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	authority, err := ca.Open(ca.Options{Dir: filepath.Join(dir, "ca"), RootName: "Test Root", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = authority.Close() })
	st, err := storage.Open(ctx, filepath.Join(dir, "db"), storage.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.AddWebhook(ctx, "https://hooks.test/x", "0123456789abcdef", webhook.CAExpiring, audit.Event{Actor: "test", Action: audit.WebhookAdd}); err != nil {
		t.Fatal(err)
	}
	return &app{ca: authority, store: st, log: log}, st, authority
}

// ca.expiring: queued for each CA certificate within 30 days of its end,
// once a day, and not before.
func TestSweepCAExpiring(t *testing.T) {
	ctx := context.Background()
	a, st, authority := caExpiringApp(t)
	count := func() int {
		ds, err := st.ListDeliveries(ctx, "", storage.Page{})
		if err != nil {
			t.Fatal(err)
		}
		return len(ds)
	}
	inter := authority.Intermediate().NotAfter
	a.sweepCAExpiring(ctx, inter.Add(-31*24*time.Hour))
	if n := count(); n != 0 {
		t.Fatalf("%d events 31 days before the end, want 0", n)
	}
	a.sweepCAExpiring(ctx, inter.Add(-29*24*time.Hour))
	a.sweepCAExpiring(ctx, inter.Add(-29*24*time.Hour+time.Hour))
	if n := count(); n != 1 {
		t.Fatalf("%d events after two sweeps within a day, want 1 (the intermediate)", n)
	}
	a.sweepCAExpiring(ctx, inter.Add(-28*24*time.Hour))
	if n := count(); n != 2 {
		t.Fatalf("%d events the next day, want 2", n)
	}
}

// An offline root's rotation warning (issue 15) goes out as ca.expiring
// once a day, with its text, long before the 30-day expiry rule would.
func TestSweepCARotationWarning(t *testing.T) {
	ctx := context.Background()
	a, st, authority := caExpiringApp(t)
	a.issuers = &issuerWatch{app: a}
	now := authority.Intermediate().NotAfter.Add(-300 * 24 * time.Hour) // far from expiry
	a.sweepCAExpiring(ctx, now)
	ds, err := st.ListDeliveries(ctx, "", storage.Page{})
	if err != nil || len(ds) != 0 {
		t.Fatalf("%d events without a warning (%v), want 0", len(ds), err)
	}
	const warning = "the offline root must sign a new intermediate within 90 days"
	a.issuers.warning.Store(warning)
	a.sweepCAExpiring(ctx, now)
	a.sweepCAExpiring(ctx, now.Add(time.Hour))
	ds, err = st.ListDeliveries(ctx, "", storage.Page{})
	if err != nil || len(ds) != 1 {
		t.Fatalf("%d events after two sweeps within a day with a warning (%v), want 1", len(ds), err)
	}
	if !strings.Contains(string(ds[0].Body), warning) {
		t.Fatalf("event payload %s does not carry the warning", ds[0].Body)
	}
}
