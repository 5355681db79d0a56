package storage

import (
	"testing"
	"time"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/internal/audit"
)

func init() {
	suiteCases = append(suiteCases,
		suiteCase{"console/users", testAdminUsers},
		suiteCase{"console/login-throttle", testLoginThrottle},
		suiteCase{"console/sessions", testSessions},
		suiteCase{"console/audit", testAudit},
		suiteCase{"console/expiring-per-day", testExpiringPerDay},
	)
}

func testAdminUsers(t *testing.T, s Store) {
	n, err := s.CountAdminUsers(ctx(t))
	noErr(t, "count", err)
	if n != 0 {
		t.Fatalf("fresh store has %d users", n)
	}
	noErr(t, "create", s.CreateAdminUser(ctx(t), &AdminUser{Username: "admin", PasswordHash: "h1", CreatedAt: base}))
	wantErr(t, "create twice", s.CreateAdminUser(ctx(t), &AdminUser{Username: "admin", PasswordHash: "h2"}), ErrConflict)
	noErr(t, "create ops", s.CreateAdminUser(ctx(t), &AdminUser{Username: "ops", PasswordHash: "h3"}))
	u, err := s.GetAdminUser(ctx(t), "admin")
	noErr(t, "get", err)
	if u.PasswordHash != "h1" || u.CreatedAt.Location() != time.UTC || u.LastLoginAt != nil {
		t.Fatalf("got %+v", u)
	}
	_, err = s.GetAdminUser(ctx(t), "nobody")
	wantErr(t, "get unknown", err, ErrNotFound)
	list, err := s.ListAdminUsers(ctx(t))
	noErr(t, "list", err)
	if len(list) != 2 || list[0].Username != "admin" || list[1].Username != "ops" {
		t.Fatalf("list = %+v", list)
	}

	// A new password lifts the lock and ends the user's sessions.
	_, err = s.RecordLoginFailure(ctx(t), "admin", base, 1, time.Hour)
	noErr(t, "fail", err)
	noErr(t, "session", s.CreateSession(ctx(t), &Session{TokenHash: "t1", Username: "admin", CSRFToken: "c", ExpiresAt: base.Add(time.Hour)}))
	noErr(t, "passwd", s.SetAdminPassword(ctx(t), "admin", "h9"))
	wantErr(t, "passwd unknown", s.SetAdminPassword(ctx(t), "nobody", "x"), ErrNotFound)
	u, _ = s.GetAdminUser(ctx(t), "admin")
	th, _ := s.GetLoginThrottle(ctx(t), "admin")
	_, err = s.GetSession(ctx(t), "t1", base)
	if u.PasswordHash != "h9" || th.Failures != 0 || th.LockedUntil != nil {
		t.Fatalf("after passwd: user %+v throttle %+v", u, th)
	}
	wantErr(t, "session after passwd", err, ErrNotFound)

	noErr(t, "success", s.RecordLoginSuccess(ctx(t), "admin", base))
	u, _ = s.GetAdminUser(ctx(t), "admin")
	if u.LastLoginAt == nil || !u.LastLoginAt.Equal(base.Truncate(time.Microsecond)) {
		t.Fatalf("LastLoginAt = %v", u.LastLoginAt)
	}
}

func testLoginThrottle(t *testing.T, s Store) {
	lockFor := 15 * time.Minute
	th, err := s.GetLoginThrottle(ctx(t), "ghost")
	noErr(t, "get none", err)
	if th.Failures != 0 || th.LockedUntil != nil {
		t.Fatalf("unknown name throttled: %+v", th)
	}
	for i := 1; i <= 5; i++ {
		th, err = s.RecordLoginFailure(ctx(t), "ghost", base.Add(time.Duration(i)*time.Second), 5, lockFor)
		noErr(t, "fail", err)
		if th.Failures != i {
			t.Fatalf("failure %d: count %d", i, th.Failures)
		}
		if locked := th.LockedUntil != nil; locked != (i == 5) {
			t.Fatalf("failure %d: locked until %v", i, th.LockedUntil)
		}
	}
	if want := base.Add(5 * time.Second).Add(lockFor).Truncate(time.Microsecond); !th.LockedUntil.Equal(want) {
		t.Fatalf("locked until %v, want %v", th.LockedUntil, want)
	}
	// Another name is not affected.
	if other, _ := s.GetLoginThrottle(ctx(t), "admin"); other.Failures != 0 {
		t.Fatalf("other name has %d failures", other.Failures)
	}
	// Failures older than lockFor are forgotten: the count restarts.
	th, err = s.RecordLoginFailure(ctx(t), "ghost", base.Add(time.Hour), 5, lockFor)
	noErr(t, "fail later", err)
	if th.Failures != 1 {
		t.Fatalf("after a long pause: %d failures, want 1", th.Failures)
	}
	noErr(t, "success", s.RecordLoginSuccess(ctx(t), "ghost", base.Add(time.Hour)))
	if th, _ = s.GetLoginThrottle(ctx(t), "ghost"); th.Failures != 0 {
		t.Fatalf("success did not clear failures: %+v", th)
	}
}

func testSessions(t *testing.T, s Store) {
	se := &Session{TokenHash: "abc", Username: "admin", CSRFToken: "csrf", RemoteAddr: "127.0.0.1",
		CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	noErr(t, "create", s.CreateSession(ctx(t), se))
	wantErr(t, "create twice", s.CreateSession(ctx(t), se), ErrConflict)
	got, err := s.GetSession(ctx(t), "abc", base.Add(time.Minute))
	noErr(t, "get", err)
	if got.Username != "admin" || got.CSRFToken != "csrf" || got.ExpiresAt.Location() != time.UTC {
		t.Fatalf("got %+v", got)
	}
	_, err = s.GetSession(ctx(t), "abc", base.Add(2*time.Hour))
	wantErr(t, "expired", err, ErrNotFound)
	n, err := s.DeleteExpiredSessions(ctx(t), base.Add(2*time.Hour))
	noErr(t, "sweep", err)
	if n != 1 {
		t.Fatalf("swept %d sessions, want 1", n)
	}
	noErr(t, "create 2", s.CreateSession(ctx(t), &Session{TokenHash: "def", Username: "admin", CSRFToken: "c", ExpiresAt: base.Add(time.Hour)}))
	noErr(t, "delete", s.DeleteSession(ctx(t), "def"))
	_, err = s.GetSession(ctx(t), "def", base)
	wantErr(t, "deleted", err, ErrNotFound)
}

func testAudit(t *testing.T, s Store) {
	for i, e := range []audit.Event{
		{Actor: "admin", Action: audit.Login, RemoteAddr: "127.0.0.1"},
		{Actor: "admin", Action: audit.CertRevoke, Target: "certificate/abc", Detail: "reason keyCompromise"},
		{Actor: "mallory", Action: audit.LoginFailed, Detail: "wrong password 100%"},
	} {
		e.ID = acme.NewID()
		e.At = base.Add(time.Duration(i) * time.Minute)
		noErr(t, "add", s.AddAuditEvent(ctx(t), e))
		time.Sleep(2 * time.Millisecond) // IDs order by millisecond
	}
	all, err := s.ListAuditEvents(ctx(t), "", Page{})
	noErr(t, "list", err)
	if len(all) != 3 || all[0].Actor != "mallory" || all[2].Action != audit.Login || all[2].At.Location() != time.UTC {
		t.Fatalf("list = %+v", all)
	}
	for q, want := range map[string]int{"REVOKE": 1, "admin": 2, "keycompromise": 1, "100%": 1, "1000%": 0, "_": 0} {
		got, err := s.ListAuditEvents(ctx(t), q, Page{})
		noErr(t, "search", err)
		if len(got) != want {
			t.Errorf("q=%q: %d events, want %d", q, len(got), want)
		}
	}
	p1, _ := s.ListAuditEvents(ctx(t), "", Page{Limit: 2})
	p2, _ := s.ListAuditEvents(ctx(t), "", Page{After: p1[1].ID, Limit: 2})
	if len(p1) != 2 || len(p2) != 1 || p2[0].ID != all[2].ID {
		t.Fatalf("paging: %v then %v", p1, p2)
	}
	// Zero ID and time are filled in.
	noErr(t, "add defaults", s.AddAuditEvent(ctx(t), audit.Event{Actor: "system", Action: audit.CertIssue}))
}

func testExpiringPerDay(t *testing.T, s Store) {
	acct := newAccount(t, s)
	day := time.Date(2031, 3, 20, 0, 0, 0, 0, time.UTC)
	issue(t, s, acct, day.Add(time.Hour))
	issue(t, s, acct, day.Add(2*time.Hour))
	issue(t, s, acct, day.Add(26*time.Hour))
	r := issue(t, s, acct, day.Add(3*time.Hour))
	noErr(t, "revoke", s.RevokeCertificate(ctx(t), r.ID, 1, base, revokeEvent(r.ID)))
	issue(t, s, acct, day.Add(40*24*time.Hour))
	got, err := s.ExpiringPerDay(ctx(t), day, day.Add(30*24*time.Hour))
	noErr(t, "expiring per day", err)
	if len(got) != 2 || got["2031-03-20"] != 2 || got["2031-03-21"] != 1 {
		t.Fatalf("ExpiringPerDay = %v", got)
	}
}
