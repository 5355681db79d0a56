package main

import (
	"errors"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/certmint/certmint/web"
)

// consoleOptions are the console's sign-in flags (issue 20): single
// sign-on through an OpenID provider, and whether local users may sign in
// with a password.
type consoleOptions struct {
	OIDCIssuer      string
	OIDCClientID    string
	OIDCSecretFile  string
	OIDCGroupsClaim string
	OIDCRoleMap     []string
	LocalLogin      bool

	OIDC *web.OIDCConfig // set by validate when --oidc-issuer is given
}

func (c *consoleOptions) register(f *pflag.FlagSet) {
	f.StringVar(&c.OIDCIssuer, "oidc-issuer", "", "OpenID provider for console sign-in, e.g. https://login.example.com/realms/it (empty: local users only)")
	f.StringVar(&c.OIDCClientID, "oidc-client-id", "", "the console's client ID at the OpenID provider")
	f.StringVar(&c.OIDCSecretFile, "oidc-client-secret-file", "", "file holding the console's client secret (kept out of flags and ps)")
	f.StringVar(&c.OIDCGroupsClaim, "oidc-groups-claim", "groups", "ID token claim that lists the user's groups")
	f.StringSliceVar(&c.OIDCRoleMap, "oidc-role-map", nil, "GROUP=ROLE,... giving console roles (viewer, operator, admin) to the provider's groups")
	f.BoolVar(&c.LocalLogin, "local-login", true, "let local console users sign in with a password (break-glass access; false needs --oidc-issuer)")
}

// validate checks the sign-in flags and reads the client secret.
func (c *consoleOptions) validate() error {
	if c.OIDCIssuer == "" {
		if c.OIDCClientID != "" || c.OIDCSecretFile != "" || len(c.OIDCRoleMap) > 0 {
			return usagef("--oidc-client-id, --oidc-client-secret-file and --oidc-role-map need --oidc-issuer URL")
		}
		if !c.LocalLogin {
			return usagef("--local-login=false needs --oidc-issuer: otherwise nobody could sign in to the console")
		}
		return nil
	}
	if !strings.HasPrefix(c.OIDCIssuer, "https://") && !strings.HasPrefix(c.OIDCIssuer, "http://") {
		return usagef("--oidc-issuer %q must be the provider's issuer URL, e.g. https://login.example.com", c.OIDCIssuer)
	}
	if c.OIDCClientID == "" {
		return usagef("--oidc-issuer needs --oidc-client-id ID (the console's client at the provider)")
	}
	if len(c.OIDCRoleMap) == 0 {
		return usagef("--oidc-issuer needs --oidc-role-map GROUP=ROLE[,GROUP=ROLE...], e.g. pki-admins=admin,pki-ops=operator")
	}
	roles := map[string]web.Role{}
	for _, m := range c.OIDCRoleMap {
		group, role, ok := strings.Cut(m, "=")
		r, err := web.ParseRole(role)
		if !ok || strings.TrimSpace(group) == "" || err != nil {
			return usagef("--oidc-role-map %q must be GROUP=ROLE with ROLE viewer, operator or admin", m)
		}
		roles[strings.TrimSpace(group)] = r
	}
	var secret string
	if c.OIDCSecretFile != "" {
		b, err := os.ReadFile(c.OIDCSecretFile)
		if err != nil {
			return usagef("cannot read --oidc-client-secret-file %s: %v", c.OIDCSecretFile, errors.Unwrap(err))
		}
		secret = strings.TrimSpace(string(b))
	}
	c.OIDC = &web.OIDCConfig{Issuer: c.OIDCIssuer, ClientID: c.OIDCClientID, ClientSecret: secret,
		GroupsClaim: c.OIDCGroupsClaim, RoleMap: roles}
	return nil
}
