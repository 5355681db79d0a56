package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/certmint/certmint/internal/audit"
	"github.com/certmint/certmint/storage"
)

const (
	sessionCookie = "__Host-certmint-session"
	loginCookie   = "__Host-certmint-login" // CSRF token of the sign-in form
	csrfField     = "csrf_token"
	maxFormBytes  = 64 << 10
)

// HashPassword returns the bcrypt hash stored for a console password.
// `certmint admin user add|passwd` uses it too, so both agree.
func HashPassword(password string) (string, error) {
	if len(password) < 8 {
		return "", errors.New("the password must have at least 8 characters")
	}
	if len(password) > 72 {
		return "", errors.New("the password must have at most 72 bytes (a bcrypt limit)")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// bcryptCost is the work factor of stored hashes (12: about a quarter
// second here). Unit tests lower it; nothing else changes it.
var bcryptCost = 12

// dummyHash is compared against when the user name is unknown, so that a
// wrong name takes as long as a wrong password. It is made on first use,
// at the same cost as real hashes.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("certmint-no-such-user"), bcryptCost)
	return h
})

// randomToken returns 32 random bytes, base64url.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

type ctxKey struct{}

func sessionFrom(ctx context.Context) *storage.Session {
	se, _ := ctx.Value(ctxKey{}).(*storage.Session)
	return se
}

// lookupSession returns the session of the request's cookie and its user,
// or nils. The user is read on every request, so a user disabled or given
// another role since signing in is held to that at its next request; the
// session of a disabled or deleted user is ended.
func (s *server) lookupSession(r *http.Request) (*storage.Session, *storage.AdminUser, error) {
	if se := sessionFrom(r.Context()); se != nil {
		return se, userFrom(r.Context()), nil
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, nil, nil
	}
	se, err := s.store.GetSession(r.Context(), hashToken(c.Value), s.now())
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	u, err := s.store.GetAdminUser(r.Context(), se.Username)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, nil, err
	}
	if u == nil || u.Disabled {
		if err := s.store.DeleteSession(r.Context(), se.TokenHash); err != nil {
			s.log.Warn("console: end session of a disabled user", "user", se.Username, "err", err)
		}
		return nil, nil, nil
	}
	return se, u, nil
}

// withSession is r with the session and its user in the context.
func withSession(r *http.Request, se *storage.Session, u *storage.AdminUser) *http.Request {
	ctx := context.WithValue(r.Context(), ctxKey{}, se)
	return r.WithContext(context.WithValue(ctx, userKey{}, u))
}

// requireSession sends requests without a valid session to the sign-in
// page, remembering where they were going.
func (s *server) requireSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		se, u, err := s.lookupSession(r)
		if err != nil {
			s.handle(func(http.ResponseWriter, *http.Request) error { return err })(w, r)
			return
		}
		if se == nil {
			target := "/login"
			if r.Method == http.MethodGet && r.URL.Path != "/" {
				target += "?next=" + url.QueryEscape(r.URL.RequestURI())
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		next.ServeHTTP(w, withSession(r, se, u))
	})
}

// csrf checks the token of every state-changing request before any
// handler runs: the sign-in form against its cookie (double submit), all
// other forms against the session's token. Requests without a session go
// to the sign-in page like any other.
func (s *server) csrf(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			s.handle(func(http.ResponseWriter, *http.Request) error {
				return errorf(http.StatusBadRequest, "The form could not be read.")
			})(w, r)
			return
		}
		sent := r.PostForm.Get(csrfField)
		var want string
		if r.URL.Path == "/login" {
			if c, err := r.Cookie(loginCookie); err == nil {
				want = c.Value
			}
		} else {
			se, u, err := s.lookupSession(r)
			if err != nil || se == nil {
				s.requireSession(next).ServeHTTP(w, r) // redirects or reports
				return
			}
			want = se.CSRFToken
			r = withSession(r, se, u)
		}
		if !sameToken(sent, want) {
			s.log.Warn("console: form without a valid CSRF token refused", "path", r.URL.Path, "remote", remoteIP(r))
			s.handle(func(http.ResponseWriter, *http.Request) error {
				return errorf(http.StatusForbidden, "This form could not be verified: its security token (CSRF) is missing or out of date. Go back, reload the page and submit it again.")
			})(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func remoteIP(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// audit records an action of the signed-in user; a failure to record is
// logged but does not undo the action, which has happened already.
func (s *server) audit(r *http.Request, actor, action, target, detail string) {
	if actor == "" {
		if se := sessionFrom(r.Context()); se != nil {
			actor = se.Username
		}
	}
	err := s.store.AddAuditEvent(r.Context(), audit.Event{
		At: s.now(), Actor: actor, Action: action, Target: target, Detail: detail, RemoteAddr: remoteIP(r)})
	if err != nil {
		s.log.Error("console: write audit event", "action", action, "target", target, "err", err)
	}
}

type loginData struct {
	Username string
	CSRF     string
	Next     string
	Error    string
	Local    bool   // the password form is shown (--local-login)
	OIDC     string // the provider's button label, "" without OIDC
}

func (s *server) loginForm(w http.ResponseWriter, r *http.Request) error {
	if se, _, _ := s.lookupSession(r); se != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	s.showLogin(w, r, http.StatusOK, loginData{Next: safeNext(r.URL.Query().Get("next"))})
	return nil
}

// showLogin renders the form with a fresh double-submit token.
func (s *server) showLogin(w http.ResponseWriter, r *http.Request, status int, d loginData) {
	d.CSRF = randomToken()
	d.Local = !s.cfg.NoLocalLogin
	if s.oidc != nil {
		d.OIDC = s.oidc.label()
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: d.CSRF, Path: "/", MaxAge: 3600,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	s.render(w, r, status, "login", "Sign in", "", d)
}

// safeNext keeps redirects after sign-in on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

func (s *server) login(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	username := strings.TrimSpace(r.PostForm.Get("username"))
	password := r.PostForm.Get("password")
	d := loginData{Username: username, Next: safeNext(r.PostForm.Get("next"))}
	if s.cfg.NoLocalLogin {
		s.audit(r, username, audit.LoginFailed, audit.User(username), "refused: local sign-in is turned off")
		d.Error = "Sign-in with a password is turned off on this server; use single sign-on."
		s.showLogin(w, r, http.StatusForbidden, d)
		return nil
	}
	if username == "" || password == "" {
		d.Error = "Enter your user name and password."
		s.showLogin(w, r, http.StatusBadRequest, d)
		return nil
	}
	now := s.now()
	th, err := s.store.GetLoginThrottle(ctx, username)
	if err != nil {
		return err
	}
	if th.LockedUntil != nil && th.LockedUntil.After(now) {
		s.audit(r, username, audit.LoginFailed, audit.User(username), "refused: sign-in locked")
		d.Error = fmt.Sprintf("Too many failed sign-ins for this user. Sign-in is locked %s; try again later.", "for "+strings.TrimPrefix(relTime(now, *th.LockedUntil), "in "))
		s.showLogin(w, r, http.StatusTooManyRequests, d)
		return nil
	}
	hash := dummyHash()
	u, err := s.store.GetAdminUser(ctx, username)
	switch {
	case err == nil:
		hash = []byte(u.PasswordHash)
	case !errors.Is(err, storage.ErrNotFound):
		return err
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || u == nil || u.Source == "oidc" {
		th, err := s.store.RecordLoginFailure(ctx, username, now, lockAfter, lockFor)
		if err != nil {
			return err
		}
		s.audit(r, username, audit.LoginFailed, audit.User(username), fmt.Sprintf("wrong user name or password (failure %d)", th.Failures))
		s.sleep(r, s.loginDelay(th.Failures))
		d.Error = "Wrong user name or password."
		status := http.StatusUnauthorized
		if th.LockedUntil != nil && th.LockedUntil.After(now) {
			d.Error = fmt.Sprintf("Wrong user name or password. After %d failures sign-in for this user is locked for %d minutes.", th.Failures, int(lockFor/time.Minute))
			status = http.StatusTooManyRequests
		}
		s.showLogin(w, r, status, d)
		return nil
	}
	if u.Disabled {
		s.audit(r, username, audit.LoginFailed, audit.User(username), "refused: user disabled")
		d.Error = "This console user is disabled. Ask a console administrator to enable it."
		s.showLogin(w, r, http.StatusForbidden, d)
		return nil
	}
	if err := s.store.RecordLoginSuccess(ctx, username, now); err != nil {
		return err
	}
	return s.startSession(w, r, u, d.Next, false)
}

// startSession signs u in: a new session, its cookie, an audit entry,
// and a redirect to next. After a sign-in through the OpenID provider
// (viaPage) the redirect is a page that moves on by itself: the browser
// arrives from the provider's site, and a SameSite=Strict cookie set on
// a cross-site navigation is only sent once the console's own page
// navigates.
func (s *server) startSession(w http.ResponseWriter, r *http.Request, u *storage.AdminUser, next string, viaPage bool) error {
	ctx := r.Context()
	now := s.now()
	username := u.Username
	tok := randomToken()
	se := &storage.Session{TokenHash: hashToken(tok), Username: username, CSRFToken: randomToken(),
		RemoteAddr: remoteIP(r), CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL)}
	if err := s.store.CreateSession(ctx, se); err != nil {
		return err
	}
	// Expired sessions are swept at sign-in: rare enough, and no replica
	// needs a timer for it.
	if _, err := s.store.DeleteExpiredSessions(ctx, now); err != nil {
		s.log.Warn("console: sweep expired sessions", "err", err)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: tok, Path: "/", MaxAge: int(s.cfg.SessionTTL / time.Second),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	r = withSession(r, se, u)
	detail := "role " + u.Role
	if viaPage {
		detail += ", through the OpenID provider"
		s.audit(r, username, audit.Login, audit.User(username), detail)
		s.render(w, r, http.StatusOK, "signed-in", "Signed in", "", map[string]string{"Next": next})
		return nil
	}
	s.audit(r, username, audit.Login, audit.User(username), detail)
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

// loginDelay doubles with every failure in a row, up to maxLoginDelay.
func (s *server) loginDelay(failures int) time.Duration {
	d := s.cfg.LoginDelay
	for i := 1; i < failures && d < maxLoginDelay; i++ {
		d *= 2
	}
	return min(d, maxLoginDelay)
}

func sleepCtx(r *http.Request, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

func (s *server) logout(w http.ResponseWriter, r *http.Request) error {
	se := sessionFrom(r.Context())
	if err := s.store.DeleteSession(r.Context(), se.TokenHash); err != nil {
		return err
	}
	s.audit(r, se.Username, audit.Logout, audit.User(se.Username), "")
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}
