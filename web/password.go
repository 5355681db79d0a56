package web

import (
	"net/http"

	"golang.org/x/crypto/bcrypt"

	"github.com/certmint/certmint/internal/audit"
)

// passwordData is the form of /password, where a local user replaces the
// one-time password an administrator gave it.
type passwordData struct {
	Error string
	Local bool
}

func (s *server) passwordForm(w http.ResponseWriter, r *http.Request) error {
	s.render(w, r, http.StatusOK, "password", "Change password", "", passwordData{Local: userFrom(r.Context()).Source == "local"})
	return nil
}

// passwordChange checks the current password, sets the new one and, as
// every password change does (SetAdminPassword), ends all the user's
// sessions, this one too: the user signs in again with the new password.
func (s *server) passwordChange(w http.ResponseWriter, r *http.Request) error {
	u := userFrom(r.Context())
	d := passwordData{Local: u.Source == "local"}
	if !d.Local {
		return errorf(http.StatusBadRequest, "You sign in through the identity provider; change your password there.")
	}
	cur, next, again := r.PostForm.Get("current"), r.PostForm.Get("new"), r.PostForm.Get("again")
	var hash string
	var err error
	switch {
	case bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(cur)) != nil:
		d.Error = "The current password is wrong."
	case next != again:
		d.Error = "The new passwords differ."
	case next == cur:
		d.Error = "Choose a password other than the current one."
	default:
		if hash, err = HashPassword(next); err != nil {
			d.Error = "The new password: " + err.Error() + "."
		}
	}
	if d.Error != "" {
		s.render(w, r, http.StatusBadRequest, "password", "Change password", "", d)
		return nil
	}
	if err := s.store.SetAdminPassword(r.Context(), u.Username, hash); err != nil {
		return err
	}
	s.audit(r, "", audit.UserPassword, audit.User(u.Username), "changed by the user; sessions ended")
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}
