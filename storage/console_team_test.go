package storage

import (
	"testing"
	"time"

	"github.com/certmint/certmint/internal/audit"
)

func init() {
	suiteCases = append(suiteCases,
		suiteCase{"console/team-users", testTeamUsers},
		suiteCase{"console/audit-filter", testAuditFilter},
	)
}

func testTeamUsers(t *testing.T, s Store) {
	noErr(t, "create", s.CreateAdminUser(ctx(t), &AdminUser{Username: "root", PasswordHash: "h"}))
	u, err := s.GetAdminUser(ctx(t), "root")
	noErr(t, "get", err)
	if u.Role != "admin" || u.Source != "local" || u.Disabled {
		t.Fatalf("defaults: role %q source %q disabled %v", u.Role, u.Source, u.Disabled)
	}
	noErr(t, "role", s.SetAdminRole(ctx(t), "root", "viewer"))
	wantErr(t, "role of nobody", s.SetAdminRole(ctx(t), "nobody", "viewer"), ErrNotFound)
	for _, tok := range []string{"t1", "t2"} {
		noErr(t, "session", s.CreateSession(ctx(t), &Session{TokenHash: tok, Username: "root", CSRFToken: "c", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}))
	}
	list, err := s.ListUserSessions(ctx(t), "root", base)
	noErr(t, "sessions", err)
	if len(list) != 2 {
		t.Fatalf("%d sessions, want 2", len(list))
	}
	noErr(t, "end one", s.DeleteUserSession(ctx(t), "root", "t1"))
	wantErr(t, "end it again", s.DeleteUserSession(ctx(t), "root", "t1"), ErrNotFound)
	wantErr(t, "end another user's", s.DeleteUserSession(ctx(t), "other", "t2"), ErrNotFound)
	noErr(t, "disable", s.SetAdminDisabled(ctx(t), "root", true))
	if list, _ := s.ListUserSessions(ctx(t), "root", base); len(list) != 0 {
		t.Fatalf("disabling left %d sessions", len(list))
	}
	u, _ = s.GetAdminUser(ctx(t), "root")
	if !u.Disabled || u.Role != "viewer" {
		t.Fatalf("after disable: %+v", u)
	}

	o, err := s.UpsertOIDCUser(ctx(t), "alice", "operator", base)
	noErr(t, "oidc first sign-in", err)
	if o.Source != "oidc" || o.Role != "operator" {
		t.Fatalf("oidc user %+v", o)
	}
	o, err = s.UpsertOIDCUser(ctx(t), "alice", "admin", base.Add(time.Hour))
	noErr(t, "oidc again", err)
	if o.Role != "admin" || o.LastLoginAt == nil || !o.LastLoginAt.Equal(ts(base.Add(time.Hour))) {
		t.Fatalf("oidc user after second sign-in %+v", o)
	}
	_, err = s.UpsertOIDCUser(ctx(t), "root", "admin", base)
	wantErr(t, "oidc over a local user", err, ErrConflict)
}

func testAuditFilter(t *testing.T, s Store) {
	for i, e := range []audit.Event{
		{Actor: "alice", Action: audit.CertRevoke, Target: "certificate/A"},
		{Actor: "acct", Action: audit.CertIssue, Target: "certificate/B"},
		{Actor: "acct", Action: audit.CertIssue, Target: "certificate/C"},
		{Actor: "bob", Action: audit.AccessDenied, Target: "POST /certificates/A/revoke"},
	} {
		e.At = base.Add(time.Duration(i) * time.Hour)
		noErr(t, "add", s.AddAuditEvent(ctx(t), e))
	}
	for name, c := range map[string]struct {
		f    AuditFilter
		want int64
	}{
		"all":          {AuditFilter{}, 4},
		"hide issue":   {AuditFilter{HideActions: []string{audit.CertIssue}}, 2},
		"action":       {AuditFilter{Action: audit.CertIssue}, 2},
		"actor":        {AuditFilter{Actor: "bob"}, 1},
		"target":       {AuditFilter{Target: "CERTIFICATE/a"}, 1},
		"from":         {AuditFilter{From: base.Add(2 * time.Hour)}, 2},
		"to":           {AuditFilter{To: base.Add(time.Hour)}, 1},
		"q and action": {AuditFilter{Q: "revoke", Action: audit.AccessDenied}, 1},
	} {
		n, err := s.CountAuditEvents(ctx(t), c.f)
		noErr(t, name, err)
		list, err := s.FindAuditEvents(ctx(t), c.f, Page{})
		noErr(t, name, err)
		if n != c.want || int64(len(list)) != c.want {
			t.Errorf("%s: count %d, list %d, want %d", name, n, len(list), c.want)
		}
	}
	p1, _ := s.FindAuditEvents(ctx(t), AuditFilter{}, Page{Limit: 3})
	p2, _ := s.FindAuditEvents(ctx(t), AuditFilter{}, Page{After: p1[2].ID, Limit: 3})
	if len(p1) != 3 || len(p2) != 1 || p1[0].Action != audit.AccessDenied {
		t.Fatalf("keyset pages: %d then %d", len(p1), len(p2))
	}
}
