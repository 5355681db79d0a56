package storage

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
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
	// Expected outcomes are not logged at all.
	_ = s.UseNonce(context.Background(), "n", base)
	_ = s.UseNonce(context.Background(), "n", base)
	out := buf.String()
	if !strings.Contains(out, "no_such_table") {
		t.Fatalf("failing query not logged: %q", out)
	}
	if strings.Contains(out, "TOPSECRETPARAM") || strings.Contains(out, "used_nonces") {
		t.Fatalf("log holds parameters or expected conflicts: %q", out)
	}
}
