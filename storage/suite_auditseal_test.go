package storage

import (
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/certmint/certmint/internal/audit"
	"github.com/certmint/certmint/internal/auditchain"
)

func init() {
	suiteCases = append(suiteCases,
		suiteCase{"auditseal/seal-verify", testAuditSealVerify},
		suiteCase{"auditseal/unique-seq", testAuditSealUniqueSeq},
	)
}

// testAuditSealVerify seals entries as the store wrote them and verifies
// them as it reads them back: what the engine does to times and text
// must not change a digest. An edit made behind the store is then named.
func testAuditSealVerify(t *testing.T, s Store) {
	for i, detail := range []string{"plain", "ünïcode ✓", "", "line\nbreak", `quote " and \ backslash`} {
		e := audit.Event{At: base.Add(time.Duration(i) * time.Nanosecond * 1234567), Actor: "alice", Action: audit.Login,
			Target: audit.User("alice"), Detail: detail, RemoteAddr: "192.0.2.1"}
		noErr(t, "add audit event", s.AddAuditEvent(ctx(t), e))
	}
	sealer := &auditchain.Sealer{Store: s, Holder: "test", Every: time.Second, Settle: time.Minute,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return time.Now().Add(2 * time.Minute) }}
	n, err := sealer.Once(ctx(t))
	if err != nil || n != 1 {
		t.Fatalf("Once: %d seals, %v; want 1", n, err)
	}
	last, err := s.LastAuditSeal(ctx(t))
	noErr(t, "last seal", err)
	if last == nil || last.Seq != 1 || last.Count != 5 || last.Digests != "" || last.Hash == "" {
		t.Fatalf("LastAuditSeal = %+v, want seal 1 of 5 entries without digests", last)
	}
	rep, err := auditchain.Verify(ctx(t), s, auditchain.Options{})
	noErr(t, "verify", err)
	if !rep.OK() || rep.Covered != 5 || rep.Unsealed != 0 {
		t.Fatalf("verify: %+v (first %v), want 5 entries intact", rep, rep.First)
	}
	entries, err := s.AuditEntries(ctx(t), "", "", 10)
	noErr(t, "entries", err)
	noErr(t, "edit", gormOf(s).db.WithContext(ctx(t)).Exec("UPDATE audit_events SET actor = 'mallory' WHERE id = ?", entries[2].ID).Error)
	rep, err = auditchain.Verify(ctx(t), s, auditchain.Options{})
	noErr(t, "verify", err)
	if rep.OK() || rep.First.Kind != auditchain.Changed || rep.First.EntryID != entries[2].ID {
		t.Fatalf("after an edit: %+v, want entry %s changed", rep.First, entries[2].ID)
	}
}

func testAuditSealUniqueSeq(t *testing.T, s Store) {
	seal := auditchain.Seal{Seq: 1, SealedAt: base, Upto: "x", Count: 0, Hash: "h"}
	noErr(t, "first seal 1", s.AddAuditSeal(ctx(t), seal))
	if err := s.AddAuditSeal(ctx(t), seal); !errors.Is(err, ErrConflict) {
		t.Fatalf("second seal 1: %v, want ErrConflict", err)
	}
}
