package web

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/certmint/certmint/internal/audit"
	"github.com/certmint/certmint/internal/auditchain"
)

// TestAuditPageChain: the Audit page says when nothing is sealed yet, and
// after a seal shows it and that the chain verifies.
func TestAuditPageChain(t *testing.T) {
	f := newFixture(t)
	_, body := f.get(f.signedIn(), "/audit")
	if !strings.Contains(body, `id="audit-seal"`) || !strings.Contains(body, "No seal yet") {
		t.Fatalf("before any seal the page does not say so:\n%s", section(body))
	}

	f = newFixture(t)
	c := f.signedIn() // one login entry
	for range 3 {
		if err := f.store.AddAuditEvent(context.Background(), audit.Event{Actor: "cli", Action: audit.UserAdd, Target: audit.User("x")}); err != nil {
			t.Fatal(err)
		}
	}
	s := &auditchain.Sealer{Store: f.store, Holder: "test", Settle: time.Minute, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time { return time.Now().Add(2 * time.Minute) }}
	if n, err := s.Once(context.Background()); n != 1 || err != nil {
		t.Fatalf("seal: %d, %v", n, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body = f.get(c, "/audit")
		if !strings.Contains(body, "checking") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page never finished checking:\n%s", section(body))
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []string{"Last seal <strong>#1</strong>", "sealing 4 entries", "chain verifies", "1 seal over 4 entries intact"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, section(body))
		}
	}
}

func section(body string) string {
	if i := strings.Index(body, `id="audit-chain"`); i >= 0 {
		return body[i:min(len(body), i+1200)]
	}
	return body
}

// failingSeals is a store whose seals cannot be read.
type failingSeals struct{ Store }

func (failingSeals) AuditSeals(context.Context, int64, int) ([]auditchain.Seal, error) {
	return nil, errors.New("database unavailable")
}

// TestAuditChainCheckFails: a check that fails replaces the previous
// verdict, which the page would otherwise show as checked just now.
func TestAuditChainCheckFails(t *testing.T) {
	f := newFixture(t)
	settled := func() chainStatus {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			st, err := f.srv.auditChain(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !st.Checking {
				return st
			}
		}
		t.Fatal("the check never finished")
		return chainStatus{}
	}
	if st := settled(); st.Report == nil || !st.Report.OK() {
		t.Fatalf("first check: %+v, want an intact (empty) chain", st)
	}
	f.srv.store = failingSeals{f.srv.store}
	f.srv.now = func() time.Time { return time.Now().Add(2 * chainCheckEvery) }
	f.srv.auditChain(context.Background()) // starts a new check
	if st := settled(); st.Report != nil || st.Err == nil {
		t.Fatalf("after a failed check: report %+v, err %v; want no verdict and the error", st.Report, st.Err)
	}
}
