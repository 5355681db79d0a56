package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/certmint/certmint/internal/audit"
	"github.com/certmint/certmint/storage"
)

// signedInAs adds a local user with role and returns a client with its
// session and a CSRF token of that session.
func (f *fixture) signedInAs(name string, role Role) (*http.Client, string) {
	f.t.Helper()
	hash, err := HashPassword(testPassword)
	must(f.t, err)
	must(f.t, f.store.CreateAdminUser(context.Background(), &storage.AdminUser{Username: name, PasswordHash: hash, Role: string(role)}))
	c := f.client()
	if resp, body := f.tryLogin(c, name, testPassword); resp.StatusCode != http.StatusSeeOther {
		f.t.Fatalf("sign-in of %s: %d\n%s", name, resp.StatusCode, body)
	}
	_, body := f.get(c, "/")
	return c, csrfOf(f.t, body)
}

// TestRolesPerRoute checks the route table: each role reaches what it
// may and gets 403 elsewhere, with a valid CSRF token, so that only the
// role stops it; each refusal is audited.
func TestRolesPerRoute(t *testing.T) {
	f := newFixture(t)
	cert := seedCert(t, f.store, "roles.test", time.Now().Add(60*24*time.Hour))
	viewer, vtok := f.signedInAs("vic", RoleViewer)
	operator, otok := f.signedInAs("olga", RoleOperator)

	for _, p := range []string{"/", "/certificates", "/certificates/" + cert.ID, "/orders", "/accounts", "/eab", "/audit", "/audit/export?format=csv"} {
		if resp, _ := f.get(viewer, p); resp.StatusCode != http.StatusOK {
			t.Errorf("viewer GET %s: %d", p, resp.StatusCode)
		}
	}
	_, page := f.get(viewer, "/certificates/"+cert.ID)
	if strings.Contains(page, "/revoke") || strings.Contains(page, "/renew") {
		t.Error("viewer's certificate page shows revoke or renew")
	}
	for _, p := range []string{"/certificates/" + cert.ID + "/revoke", "/users", "/settings", "/debug/pprof/", "/eab/x/revoke"} {
		if resp, _ := f.get(viewer, p); resp.StatusCode != http.StatusForbidden {
			t.Errorf("viewer GET %s: %d, want 403", p, resp.StatusCode)
		}
	}
	for _, p := range []string{"/certificates/" + cert.ID + "/revoke", "/certificates/" + cert.ID + "/renew", "/eab", "/accounts/" + cert.AccountID + "/deactivate", "/users"} {
		if resp, _ := f.post(viewer, p, url.Values{"csrf_token": {vtok}, "reason": {"1"}, "username": {"x"}, "role": {"admin"}}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("viewer POST %s: %d, want 403", p, resp.StatusCode)
		}
	}
	evs, err := f.store.FindAuditEvents(context.Background(), storage.AuditFilter{Action: audit.AccessDenied, Actor: "vic"}, storage.Page{})
	must(t, err)
	if len(evs) != 10 {
		t.Errorf("%d access.denied events for the viewer, want 10", len(evs))
	}
	if c, _ := f.store.GetCertificate(context.Background(), cert.ID); c.Revoked {
		t.Fatal("a viewer's POST revoked the certificate")
	}

	// The operator revokes, but cannot manage users.
	if resp, body := f.post(operator, "/certificates/"+cert.ID+"/revoke", url.Values{"csrf_token": {otok}, "reason": {"4"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("operator revoke: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := f.post(operator, "/users", url.Values{"csrf_token": {otok}, "username": {"x"}, "role": {"admin"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("operator adds a user: %d", resp.StatusCode)
	}
}

// TestUserAdmin: an admin adds a user (its password shown once), changes
// its role, and disabling it ends its session at its next request.
func TestUserAdmin(t *testing.T) {
	f := newFixture(t)
	admin := f.signedIn()
	_, body := f.get(admin, "/users")
	tok := csrfOf(t, body)
	resp, body := f.post(admin, "/users", url.Values{"csrf_token": {tok}, "username": {"bad name"}, "role": {"viewer"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="user-add-error"`) {
		t.Fatalf("bad user name: %d", resp.StatusCode)
	}
	resp, body = f.post(admin, "/users", url.Values{"csrf_token": {tok}, "username": {"dana"}, "role": {"viewer"}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("add user: %d\n%s", resp.StatusCode, body)
	}
	pw := between(body, `id="one-time-password">`, "<")
	dana := f.client()
	if resp, _ := f.tryLogin(dana, "dana", pw); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in with the one-time password: %d", resp.StatusCode)
	}
	if resp, _ := f.get(dana, "/settings"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("viewer dana on /settings: %d", resp.StatusCode)
	}
	f.post(admin, "/users/dana", url.Values{"csrf_token": {tok}, "action": {"role"}, "role": {"admin"}})
	if resp, _ := f.get(dana, "/settings"); resp.StatusCode != http.StatusOK {
		t.Fatalf("dana made admin, on /settings: %d", resp.StatusCode)
	}
	if resp, _ := f.post(admin, "/users/admin", url.Values{"csrf_token": {tok}, "action": {"disable"}}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("admin disables itself: %d", resp.StatusCode)
	}
	f.post(admin, "/users/dana", url.Values{"csrf_token": {tok}, "action": {"disable"}})
	if resp, _ := f.get(dana, "/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("disabled dana's next request: %d, want a redirect to sign in", resp.StatusCode)
	}
	if resp, _ := f.tryLogin(dana, "dana", pw); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("disabled dana signs in: %d", resp.StatusCode)
	}
	if got := auditActions(t, f.store); !strings.Contains(got, "admin:user.add") || !strings.Contains(got, "admin:user.role") || !strings.Contains(got, "admin:user.disable") {
		t.Fatalf("audit: %s", got)
	}
}

func between(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return ""
	}
	s = s[i+len(from):]
	if j := strings.Index(s, to); j >= 0 {
		return s[:j]
	}
	return s
}

// TestPasswordChange: a user replaces its one-time password; all its
// sessions end and the new password signs in.
func TestPasswordChange(t *testing.T) {
	f := newFixture(t)
	c, tok := f.signedInAs("pat", RoleViewer)
	resp, body := f.post(c, "/password", url.Values{"csrf_token": {tok}, "current": {"wrong-password"}, "new": {"new-password-1"}, "again": {"new-password-1"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "current password is wrong") {
		t.Fatalf("wrong current password: %d", resp.StatusCode)
	}
	resp, _ = f.post(c, "/password", url.Values{"csrf_token": {tok}, "current": {testPassword}, "new": {"new-password-1"}, "again": {"new-password-1"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("change: %d", resp.StatusCode)
	}
	if resp, _ := f.get(c, "/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("session after the change: %d, want sign-in again", resp.StatusCode)
	}
	if resp, _ := f.tryLogin(f.client(), "pat", "new-password-1"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in with the new password: %d", resp.StatusCode)
	}
}
