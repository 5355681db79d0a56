package web

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/certmint/certmint/internal/audit"
	"github.com/certmint/certmint/storage"
)

// OIDCConfig is sign-in through an OpenID provider (OpenID Connect Core
// 1.0, authorization code flow, with PKCE, RFC 7636).
type OIDCConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// GroupsClaim is the ID token claim that lists the user's groups
	// (default "groups").
	GroupsClaim string
	// RoleMap gives the role of each group; a user gets the highest role
	// of its groups, and is refused when none of them is mapped.
	RoleMap map[string]Role
	// HTTPClient talks to the provider (default http.DefaultClient).
	HTTPClient *http.Client
}

// oidcCookie carries state, nonce, PKCE verifier and the page to return
// to across the round trip through the provider. SameSite=Lax: the
// provider's redirect back is a cross-site top-level navigation.
const (
	oidcCookie   = "__Host-certmint-oidc"
	oidcCallback = "/oidc/callback"
	oidcFlowTTL  = 10 * time.Minute
)

// oidcClient discovers the provider on first use and again after a
// failure, so a provider that is down when certmint starts does not keep
// single sign-on off until a restart.
type oidcClient struct {
	cfg OIDCConfig
	log *slog.Logger

	mu       sync.Mutex
	provider *oidc.Provider
}

func newOIDCClient(cfg OIDCConfig, log *slog.Logger) (*oidcClient, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" {
		return nil, errors.New("web: OIDC needs an issuer and a client ID")
	}
	if len(cfg.RoleMap) == 0 {
		return nil, errors.New("web: OIDC needs a role map (GROUP=ROLE): without one nobody could sign in")
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	return &oidcClient{cfg: cfg, log: log}, nil
}

// label names the provider on the sign-in button: its host.
func (c *oidcClient) label() string {
	if u, err := url.Parse(c.cfg.Issuer); err == nil && u.Host != "" {
		return u.Host
	}
	return "single sign-on"
}

func (c *oidcClient) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, c.cfg.HTTPClient)
}

func (c *oidcClient) discover(ctx context.Context) (*oidc.Provider, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.provider != nil {
		return c.provider, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(c.ctx(ctx), c.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover OpenID provider %s: %w", c.cfg.Issuer, err)
	}
	c.provider = p
	return p, nil
}

// oauth2Config sends the provider back to this console as the browser
// reached it; the provider only accepts redirect URIs registered for the
// client, so a forged Host header gets nowhere.
func (c *oidcClient) oauth2Config(p *oidc.Provider, r *http.Request) *oauth2.Config {
	return &oauth2.Config{
		ClientID: c.cfg.ClientID, ClientSecret: c.cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: "https://" + r.Host + oidcCallback,
		Scopes:      []string{oidc.ScopeOpenID, "profile", "email", c.cfg.GroupsClaim},
	}
}

// roleOf is the highest role any of groups maps to, "" when none does.
func (c *oidcClient) roleOf(groups []string) Role {
	var best Role
	for _, g := range groups {
		if r, ok := c.cfg.RoleMap[g]; ok && r.rank() > best.rank() {
			best = r
		}
	}
	return best
}

func (s *server) oidcUnavailable(err error) error {
	s.log.Warn("console: OpenID provider unavailable", "err", err)
	return errorf(http.StatusBadGateway, "The identity provider at %s is not answering, so single sign-on is unavailable. Try again in a moment%s.",
		s.oidc.cfg.Issuer, map[bool]string{true: ", or sign in with a local user", false: ""}[!s.cfg.NoLocalLogin])
}

// oidcLogin starts the authorization code flow (OpenID Connect Core
// §3.1.2.1) with a fresh state, nonce and PKCE verifier (RFC 7636 §4.1).
func (s *server) oidcLogin(w http.ResponseWriter, r *http.Request) error {
	if s.oidc == nil {
		return errNotFound
	}
	p, err := s.oidc.discover(r.Context())
	if err != nil {
		return s.oidcUnavailable(err)
	}
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	next := safeNext(r.URL.Query().Get("next"))
	val := strings.Join([]string{state, nonce, verifier, base64.RawURLEncoding.EncodeToString([]byte(next))}, ".")
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: val, Path: "/", MaxAge: int(oidcFlowTTL / time.Second),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	u := s.oidc.oauth2Config(p, r).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))
	http.Redirect(w, r, u, http.StatusFound)
	return nil
}

// oidcRefuse shows why a sign-in through the provider was refused, and
// audits it.
func (s *server) oidcRefuse(r *http.Request, user, why string) error {
	s.audit(r, orNone(user), audit.LoginFailed, audit.User(orNone(user)), "OpenID sign-in refused: "+why)
	return errorf(http.StatusForbidden, "Sign-in refused: %s", why)
}

// oidcCallback finishes the flow: state against the cookie, the code
// exchanged with the PKCE verifier, the ID token's signature, issuer,
// audience and expiry verified by go-oidc, and its nonce against the
// cookie (OpenID Connect Core §3.1.3.7); then the groups give the role.
func (s *server) oidcCallback(w http.ResponseWriter, r *http.Request) error {
	if s.oidc == nil {
		return errNotFound
	}
	c, err := r.Cookie(oidcCookie)
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	if err != nil {
		return errorf(http.StatusBadRequest, "This sign-in was not started here or took longer than %d minutes. Start again from the sign-in page.", int(oidcFlowTTL/time.Minute))
	}
	parts := strings.Split(c.Value, ".")
	if len(parts) != 4 {
		return errorf(http.StatusBadRequest, "The sign-in cookie is damaged. Start again from the sign-in page.")
	}
	state, nonce, verifier := parts[0], parts[1], parts[2]
	nextB, _ := base64.RawURLEncoding.DecodeString(parts[3])
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return s.oidcRefuse(r, "", fmt.Sprintf("the identity provider answered %s: %s", e, q.Get("error_description")))
	}
	if !sameToken(q.Get("state"), state) {
		return s.oidcRefuse(r, "", "the state parameter does not match this browser's sign-in (a forged or replayed callback)")
	}
	p, err := s.oidc.discover(r.Context())
	if err != nil {
		return s.oidcUnavailable(err)
	}
	ctx := s.oidc.ctx(r.Context())
	tok, err := s.oidc.oauth2Config(p, r).Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		s.log.Warn("console: OpenID code exchange failed", "err", err)
		return s.oidcRefuse(r, "", "the identity provider did not accept the authorization code")
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return s.oidcRefuse(r, "", "the identity provider sent no ID token")
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: s.oidc.cfg.ClientID}).Verify(ctx, raw)
	if err != nil {
		s.log.Warn("console: ID token verification failed", "err", err)
		return s.oidcRefuse(r, "", "the ID token did not verify")
	}
	if !sameToken(idt.Nonce, nonce) {
		return s.oidcRefuse(r, "", "the ID token's nonce does not match this sign-in (a replayed token)")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return s.oidcRefuse(r, "", "the ID token's claims could not be read")
	}
	name := firstString(claims, "preferred_username", "email")
	if name == "" {
		name = idt.Subject
	}
	groups := stringList(claims[s.oidc.cfg.GroupsClaim])
	role := s.oidc.roleOf(groups)
	if role == "" {
		mapped := make([]string, 0, len(s.oidc.cfg.RoleMap))
		for g := range s.oidc.cfg.RoleMap {
			mapped = append(mapped, g)
		}
		slices.Sort(mapped)
		have := "no groups"
		if len(groups) > 0 {
			have = "the groups " + strings.Join(groups, ", ")
		}
		return s.oidcRefuse(r, name, fmt.Sprintf("%s is in %s, and none of them has a role on this console (the groups with a role are %s). Ask your identity provider's administrator to add you to one of them.",
			name, have, strings.Join(mapped, ", ")))
	}
	u, err := s.store.UpsertOIDCUser(r.Context(), name, string(role), s.now())
	if errors.Is(err, storage.ErrConflict) {
		return s.oidcRefuse(r, name, fmt.Sprintf("a local console user is named %s, and single sign-on does not take over local users", name))
	}
	if err != nil {
		return err
	}
	if u.Disabled {
		return s.oidcRefuse(r, name, name+" is disabled on this console. Ask a console administrator to enable it.")
	}
	return s.startSession(w, r, u, safeNext(string(nextB)), true)
}

func firstString(claims map[string]any, keys ...string) string {
	for _, k := range keys {
		if v, ok := claims[k].(string); ok && v != "" {
			return v
		}
	}
	return ""
}

// stringList reads a groups claim: a JSON array of strings, or one string.
func stringList(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
