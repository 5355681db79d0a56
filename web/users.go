package web

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/certmint/certmint/internal/audit"
	"github.com/certmint/certmint/storage"
)

// userName is what a local user may be called: no spaces or slashes, so
// that it reads the same in URLs, audit targets and the CLI.
var userName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$`)

type usersData struct {
	Users []storage.AdminUser
	Roles []Role
	Form  struct{ Name, Role, Error string }
}

func (s *server) users(w http.ResponseWriter, r *http.Request) error {
	return s.showUsers(w, r, http.StatusOK, usersData{})
}

func (s *server) showUsers(w http.ResponseWriter, r *http.Request, status int, d usersData) error {
	users, err := s.store.ListAdminUsers(r.Context())
	if err != nil {
		return err
	}
	d.Users, d.Roles = users, Roles
	if d.Form.Role == "" {
		d.Form.Role = string(RoleViewer)
	}
	s.render(w, r, status, "users", "Users", "users", d)
	return nil
}

// oneTimePassword is a fresh password the console shows once: 24
// characters of a random token (about 140 bits).
func oneTimePassword() string { return randomToken()[:24] }

// userAdd creates a local user with a generated password that the page
// shows once; the administrator hands it over and the user changes it
// with `certmint admin user passwd` or an administrator resets it.
func (s *server) userAdd(w http.ResponseWriter, r *http.Request) error {
	var d usersData
	d.Form.Name = strings.TrimSpace(r.PostForm.Get("username"))
	d.Form.Role = r.PostForm.Get("role")
	role, err := ParseRole(d.Form.Role)
	switch {
	case !userName.MatchString(d.Form.Name):
		d.Form.Error = "A user name has 1 to 128 letters, digits, dots, dashes, underscores or @, and starts with a letter or digit."
	case err != nil:
		d.Form.Error = "Choose a role: viewer, operator or admin."
	}
	if d.Form.Error != "" {
		return s.showUsers(w, r, http.StatusBadRequest, d)
	}
	pw := oneTimePassword()
	hash, err := HashPassword(pw)
	if err != nil {
		return err
	}
	err = s.store.CreateAdminUser(r.Context(), &storage.AdminUser{Username: d.Form.Name, PasswordHash: hash, Role: string(role), Source: "local"})
	if errors.Is(err, storage.ErrConflict) {
		d.Form.Error = fmt.Sprintf("A user named %s exists already.", d.Form.Name)
		return s.showUsers(w, r, http.StatusConflict, d)
	}
	if err != nil {
		return err
	}
	s.audit(r, "", audit.UserAdd, audit.User(d.Form.Name), "role "+string(role))
	s.render(w, r, http.StatusCreated, "user-password", "User added", "users",
		map[string]string{"Name": d.Form.Name, "Password": pw, "What": "added"})
	return nil
}

type userData struct {
	U        *storage.AdminUser
	Sessions []storage.Session
	Roles    []Role
	Self     bool
	Notice   string
}

func (s *server) user(w http.ResponseWriter, r *http.Request) error {
	return s.showUser(w, r, http.StatusOK, "")
}

func (s *server) showUser(w http.ResponseWriter, r *http.Request, status int, notice string) error {
	name := r.PathValue("name")
	u, err := s.store.GetAdminUser(r.Context(), name)
	if err != nil {
		return err
	}
	sessions, err := s.store.ListUserSessions(r.Context(), name, s.now())
	if err != nil {
		return err
	}
	d := userData{U: u, Sessions: sessions, Roles: Roles, Notice: notice, Self: name == userFrom(r.Context()).Username}
	s.render(w, r, status, "user", "User "+name, "users", d)
	return nil
}

// userUpdate runs one of the user page's forms, named by "action".
// Administrators cannot disable or demote themselves, so that the last
// administrator cannot lock everyone out by a slip.
func (s *server) userUpdate(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	name := r.PathValue("name")
	u, err := s.store.GetAdminUser(ctx, name)
	if err != nil {
		return err
	}
	self := name == userFrom(ctx).Username
	switch action := r.PostForm.Get("action"); action {
	case "role":
		role, err := ParseRole(r.PostForm.Get("role"))
		if err != nil {
			return s.showUser(w, r, http.StatusBadRequest, "Choose a role: viewer, operator or admin.")
		}
		if self && role != RoleAdmin {
			return s.showUser(w, r, http.StatusBadRequest, "You cannot lower your own role; ask another administrator.")
		}
		if err := s.store.SetAdminRole(ctx, name, string(role)); err != nil {
			return err
		}
		s.audit(r, "", audit.UserRole, audit.User(name), fmt.Sprintf("role %s → %s", u.Role, role))
		note := "Role set to " + string(role) + "."
		if u.Source == "oidc" {
			note += " The identity provider's groups set it again at this user's next sign-in."
		}
		return s.showUser(w, r, http.StatusOK, note)
	case "disable", "enable":
		if self {
			return s.showUser(w, r, http.StatusBadRequest, "You cannot disable yourself.")
		}
		if err := s.store.SetAdminDisabled(ctx, name, action == "disable"); err != nil {
			return err
		}
		act := map[string]string{"disable": audit.UserDisable, "enable": audit.UserEnable}[action]
		s.audit(r, "", act, audit.User(name), "")
		return s.showUser(w, r, http.StatusOK, "User "+action+"d.")
	case "password":
		if u.Source != "local" {
			return s.showUser(w, r, http.StatusBadRequest, "This user signs in through the identity provider and has no password here.")
		}
		pw := oneTimePassword()
		hash, err := HashPassword(pw)
		if err != nil {
			return err
		}
		if err := s.store.SetAdminPassword(ctx, name, hash); err != nil {
			return err
		}
		s.audit(r, "", audit.UserPassword, audit.User(name), "reset in the console; sessions ended")
		s.render(w, r, http.StatusOK, "user-password", "Password reset", "users",
			map[string]string{"Name": name, "Password": pw, "What": "reset"})
		return nil
	case "end-session":
		err := s.store.DeleteUserSession(ctx, name, r.PostForm.Get("session"))
		if errors.Is(err, storage.ErrNotFound) {
			return s.showUser(w, r, http.StatusNotFound, "That session has ended already.")
		}
		if err != nil {
			return err
		}
		s.audit(r, "", audit.SessionEnd, audit.User(name), "session "+shortID(r.PostForm.Get("session")))
		return s.showUser(w, r, http.StatusOK, "Session ended.")
	default:
		return errorf(http.StatusBadRequest, "Unknown user action %q.", action)
	}
}
