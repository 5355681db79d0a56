package web

import (
	"context"
	"fmt"
	"net/http"

	"github.com/certmint/certmint/internal/audit"
	"github.com/certmint/certmint/storage"
)

// Role is what a console user may do. Each role includes the ones below
// it: a viewer reads everything except secrets; an operator also
// revokes, renews now, deactivates accounts and manages EAB keys; an
// admin also manages users, reads the settings and profiling, and runs
// webhooks and CA actions.
type Role string

const (
	RoleViewer   Role = "viewer"
	RoleOperator Role = "operator"
	RoleAdmin    Role = "admin"
)

// Roles lists the roles from least to most powerful.
var Roles = []Role{RoleViewer, RoleOperator, RoleAdmin}

func (r Role) rank() int {
	for i, x := range Roles {
		if x == r {
			return i + 1
		}
	}
	return 0 // unknown roles can do nothing
}

// Allows says whether a user with role r may do what needs role need.
func (r Role) Allows(need Role) bool { return r.rank() > 0 && r.rank() >= need.rank() }

// ParseRole checks a role name from a form, a flag or the database.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if r.rank() == 0 {
		return "", fmt.Errorf("role %q is not viewer, operator or admin", s)
	}
	return r, nil
}

type userKey struct{}

// userFrom returns the signed-in user that requireSession loaded.
func userFrom(ctx context.Context) *storage.AdminUser {
	u, _ := ctx.Value(userKey{}).(*storage.AdminUser)
	return u
}

// roleFrom is the signed-in user's role, "" without one.
func roleFrom(ctx context.Context) Role {
	if u := userFrom(ctx); u != nil {
		return Role(u.Role)
	}
	return ""
}

// requireRole is the one check of who may do what: every route that
// needs more than a viewer wraps its handler in it, in routes(), e.g.
//
//	auth("POST /certificates/{id}/revoke", s.requireRole(RoleOperator, s.revoke))
//
// A user without the role gets a 403 page, and the refusal is audited
// (access.denied), so a forged form from a weaker role leaves a trace.
// Templates hide what a role cannot use with {{if can "operator"}}; the
// server does not rely on that.
func (s *server) requireRole(need Role, h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		have := roleFrom(r.Context())
		if have.Allows(need) {
			return h(w, r)
		}
		s.audit(r, "", audit.AccessDenied, r.Method+" "+r.URL.Path,
			fmt.Sprintf("role %s, needs %s", orNone(string(have)), need))
		return errorf(http.StatusForbidden, "Your role (%s) does not allow this; it needs the %s role. Ask a console administrator.", orNone(string(have)), need)
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
