package storage

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certmint/certmint/acme"
)

// TestLoggerHidesParameters: a failing query is logged with its SQL but
// never with its parameters, which may be nonces or keys.
func TestLoggerHidesParameters(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "db"), Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	buf.Reset()
	_ = gormOf(s).db.Exec("SELECT * FROM no_such_table WHERE x = ?", "TOPSECRETPARAM").Error
	// Expected outcomes (here a taken key thumbprint) are not logged at all.
	a := &acme.Account{ID: acme.NewID(), KeyThumbprint: "tp-dup", KeyJWK: "{}", Status: acme.StatusValid, CreatedAt: base}
	if err := s.CreateAccount(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	dup := *a
	dup.ID = acme.NewID()
	if err := s.CreateAccount(context.Background(), &dup); err == nil {
		t.Fatal("a second account with the same key was stored")
	}
	out := buf.String()
	if !strings.Contains(out, "no_such_table") {
		t.Fatalf("failing query not logged: %q", out)
	}
	if strings.Contains(out, "TOPSECRETPARAM") || strings.Contains(out, "accounts") {
		t.Fatalf("log holds parameters or expected conflicts: %q", out)
	}
}
