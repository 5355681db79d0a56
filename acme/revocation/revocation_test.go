package revocation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/certmint/certmint/internal/audit"
)

// memStore is a Store in memory: one revocation per certificate.
type memStore struct {
	revoked map[string]int
	events  []audit.Event
}

func (m *memStore) RevokeCertificate(_ context.Context, id string, reason int, _ time.Time, e audit.Event) error {
	if _, ok := m.revoked[id]; ok {
		return fmt.Errorf("certificate %s: %w", id, ErrAlreadyRevoked)
	}
	m.revoked[id] = reason
	m.events = append(m.events, e)
	return nil
}

func TestRevoke(t *testing.T) {
	cert := Certificate{ID: "c1", Serial: "0abc", Names: []string{"a.test", "b.test"}}
	for _, tc := range []struct {
		name    string
		reason  int
		before  bool // revoked already
		wantErr error
	}{
		{"ok/unspecified", 0, false, nil},
		{"ok/key-compromise", 1, false, nil},
		{"fail/reason-6-hold", 6, false, ErrBadReason},
		{"fail/reason-2-ca-compromise", 2, false, ErrBadReason},
		{"fail/unknown-reason", 42, false, ErrBadReason},
		{"fail/already-revoked", 4, true, ErrAlreadyRevoked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &memStore{revoked: map[string]int{}}
			if tc.before {
				st.revoked[cert.ID] = 0
			}
			notified := 0
			rv := &Revoker{Store: st, OnRevoke: func() { notified++ }}
			err := rv.Revoke(context.Background(), cert, Request{Reason: tc.reason, Actor: "alice", RemoteAddr: "192.0.2.1", Via: "the console"})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Revoke = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				if notified != 0 || len(st.events) != 0 {
					t.Fatalf("a refused revocation notified %d times and audited %d events", notified, len(st.events))
				}
				return
			}
			if st.revoked[cert.ID] != tc.reason || notified != 1 {
				t.Fatalf("stored reason %d, notified %d times", st.revoked[cert.ID], notified)
			}
			e := st.events[0]
			if e.Action != audit.CertRevoke || e.Target != "certificate/c1" || e.Actor != "alice" || e.RemoteAddr != "192.0.2.1" ||
				!strings.Contains(e.Detail, "serial 0abc (a.test,b.test), reason "+Name(tc.reason)+", via the console") {
				t.Fatalf("audit event %+v", e)
			}
		})
	}
}

func TestReasonNames(t *testing.T) {
	if Name(1) != "keyCompromise" || Name(7) != "7" {
		t.Fatalf("Name(1) = %s, Name(7) = %s", Name(1), Name(7))
	}
	if got := AcceptedList(); got != "0, 1, 3, 4, 5, 9" {
		t.Fatalf("AcceptedList = %q", got)
	}
}
