package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

type fakeOverdue struct {
	n   int64
	err error
}

func (f *fakeOverdue) CountOverdue(context.Context, time.Time) (int64, error) { return f.n, f.err }

func TestRenewalsOverdueGauge(t *testing.T) {
	src := &fakeOverdue{n: 7}
	m := New(Sources{Overdue: src, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if got := value(scrape(t, m), "certmint_renewals_overdue", nil); got != 7 {
		t.Fatalf("certmint_renewals_overdue = %v, want 7", got)
	}
	// Counted at each scrape: the next one sees the change.
	src.n = 2
	if got := value(scrape(t, m), "certmint_renewals_overdue", nil); got != 2 {
		t.Fatalf("after a change certmint_renewals_overdue = %v, want 2", got)
	}
	src.err = errors.New("database down")
	if got := value(scrape(t, m), "certmint_renewals_overdue", nil); got != -1 {
		t.Fatalf("with the database down the gauge is %v, want it left out", got)
	}
}
